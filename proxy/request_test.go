package proxy

import (
	"bufio"
	"net/http"
	"strings"
	"testing"
)

// FuzzReadRequest checks the proxy's request reader against net/http's:
// whatever it accepts, net/http accepts too and reads the same way. It may
// reject more (obs-fold, whitespace before a colon, versions other than
// 1.0 and 1.1, a missing Host), never less.
func FuzzReadRequest(f *testing.F) {
	for _, seed := range []string{
		"GET http://my-app.example.com/metrics?cf_app_guid=g&cf_app_instance=g%3A0 HTTP/1.1\r\nHost: my-app.example.com\r\nUser-Agent: Prometheus/3.0\r\nAccept: text/plain\r\n\r\n",
		"GET /health HTTP/1.0\r\n\r\n",
		"HEAD /metrics HTTP/1.1\nHost: x\nConnection: close\n\n",
		"\r\nGET / HTTP/1.1\r\nHost: a\r\nX-A:  b \t\r\n\r\n",
		"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
		"POST http://a/ HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc",
		"GET http://a/ HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n 2\r\n\r\n",
		"GET http://a/ HTTP/1.1\r\nhost: a\r\nconnection: Keep-Alive, close\r\n\r\n",
		"CONNECT # HTTP/1.0\n0000:\n\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		var r request
		if err := readRequest(bufio.NewReaderSize(strings.NewReader(raw), MaxHeaderBytes), &r); err != nil {
			return
		}
		if r.method == "CONNECT" {
			return // answered 405 whatever its target
		}
		// net/http's server, not ReadRequest, skips empty lines before a
		// request.
		hr, err := http.ReadRequest(bufio.NewReader(strings.NewReader(strings.TrimLeft(raw, "\r\n"))))
		if err != nil {
			if r.hasBody {
				return // rejected by the proxy before it is used
			}
			t.Fatalf("accepted what net/http rejects (%v): %q", err, raw)
		}
		if r.method != hr.Method || r.target != hr.RequestURI || r.minor != hr.ProtoMinor {
			t.Fatalf("request line read as %q %q 1.%d, net/http: %q %q 1.%d", r.method, r.target, r.minor, hr.Method, hr.RequestURI, hr.ProtoMinor)
		}
		if r.url != nil && r.url.String() != hr.URL.String() {
			t.Fatalf("URL %q, net/http %q", r.url, hr.URL)
		}
		for _, fl := range r.fields {
			if !isToken(fl.name) || strings.ContainsAny(fl.value, "\r\n\x00") {
				t.Fatalf("field %q: %q let through", fl.name, fl.value)
			}
			if strings.EqualFold(fl.name, "Host") {
				continue // net/http moves it to Request.Host
			}
			found := false
			for _, v := range hr.Header.Values(fl.name) {
				found = found || v == fl.value
			}
			if !found {
				t.Fatalf("field %q: %q, net/http has %q", fl.name, fl.value, hr.Header.Values(fl.name))
			}
		}
		if r.close != hr.Close && !r.hasBody {
			t.Fatalf("close %v, net/http %v", r.close, hr.Close)
		}
	})
}

// FuzzAppendCanonical checks header names are written as net/http writes
// them.
func FuzzAppendCanonical(f *testing.F) {
	for _, seed := range []string{"x-cf-app-instance", "CONTENT-TYPE", "a--b", "X_Y", "te"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if !isToken(name) {
			return
		}
		if got, want := string(appendCanonical(nil, name)), http.CanonicalHeaderKey(name); got != want {
			t.Fatalf("%q written as %q, net/http %q", name, got, want)
		}
	})
}

func TestHeaderBuffered(t *testing.T) {
	for raw, want := range map[string]bool{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n":         true,
		"GET / HTTP/1.1\nHost: a\n\n":               true,
		"GET / HTTP/1.1\r\nHost: a\r\n":             false,
		"\r\n\r\nGET / HTTP/1.1\r\nHost: a":         false, // empty lines before a request end nothing
		"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n": true,
		"": false,
	} {
		br := bufio.NewReader(strings.NewReader(raw))
		_, _ = br.Peek(1)
		if got := headerBuffered(br); got != want {
			t.Errorf("headerBuffered(%q) = %v, want %v", raw, got, want)
		}
	}
}
