package config

import (
	"io"

	"code.cloudfoundry.org/lager/v3"
)

// Logger returns a lager logger named component that writes JSON lines at
// level (debug, info or error) to w. Data values under keys that look like
// secrets, and values that look like tokens, are redacted before they are
// written: logs must never carry credentials, whatever a caller passes.
func Logger(component, level string, w io.Writer) lager.Logger {
	logger := lager.NewLogger(component)
	min := lager.INFO
	switch level {
	case "debug":
		min = lager.DEBUG
	case "error":
		min = lager.ERROR
	}
	sink := lager.NewWriterSink(w, min)
	redacting, err := lager.NewRedactingSink(sink, []string{`(?i)(password|secret|token|authorization|credential)`}, []string{`(?i)bearer\s+\S+`})
	if err != nil {
		// The patterns above are constants; a failure here is a programming error.
		panic(err)
	}
	// The level is checked before the redaction, which marshals every
	// line's data: a debug line at the info level is neither redacted nor
	// written (lager still builds it).
	logger.RegisterSink(lager.NewReconfigurableSink(redacting, min))
	return logger
}
