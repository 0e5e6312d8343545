package targets

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
)

// parametersSchemaJSON is the JSON Schema of the bind parameters: the
// broker's catalog publishes it, and ParseParameters validates with it, so
// the two cannot differ. It is draft-04, the one Cloud Controller accepts
// in a catalog. Its descriptions are the accepted forms that errors quote.
//
//go:embed parameters.schema.json
var parametersSchemaJSON []byte

var (
	parametersSchema = compileSchema()
	// descriptions are the schema's description of each parameter.
	descriptions = schemaDescriptions()
	// paramNames lists the parameters in the schema's order.
	paramNames = []string{ParamPath, ParamPort, ParamScrapeInterval, ParamScrapeTimeout, ParamJob, ParamLabels}
)

// ParametersSchema returns the JSON Schema of the bind parameters, as the
// catalog's service_binding.create.parameters. The map is the caller's.
func ParametersSchema() map[string]any {
	var schema map[string]any
	// The embedded schema compiled at start; it is valid JSON.
	_ = json.Unmarshal(parametersSchemaJSON, &schema)
	return schema
}

const schemaURL = "parameters.schema.json"

func compileSchema() *jsonschema.Schema {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(parametersSchemaJSON))
	if err != nil {
		panic(fmt.Sprintf("targets: %s: %v", schemaURL, err))
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(schemaURL, doc); err != nil {
		panic(fmt.Sprintf("targets: %s: %v", schemaURL, err))
	}
	return c.MustCompile(schemaURL)
}

func schemaDescriptions() map[string]string {
	var schema struct {
		Properties map[string]struct {
			Description string `json:"description"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(parametersSchemaJSON, &schema); err != nil {
		panic(fmt.Sprintf("targets: %s: %v", schemaURL, err))
	}
	out := map[string]string{}
	for name, p := range schema.Properties {
		out[name] = p.Description
	}
	return out
}

// decodeParameters decodes a bind request's parameters, keeping numbers
// exact; nil for none.
func decodeParameters(raw json.RawMessage) (any, error) {
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return nil, nil
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, errors.New("the parameters are not valid JSON")
	}
	return doc, nil
}

// expected is the reason given for a bad value of a parameter.
func expected(param string) string {
	return "expected " + descriptions[param]
}

// schemaErrors validates a parameters object with the schema and returns
// the reason each top-level key is bad; the key "" when the whole object
// is.
func schemaErrors(doc any) map[string]string {
	bad := map[string]string{}
	err := parametersSchema.Validate(doc)
	var verr *jsonschema.ValidationError
	if !errors.As(err, &verr) {
		return bad
	}
	for _, leaf := range leaves(verr) {
		if len(leaf.InstanceLocation) > 0 {
			bad[leaf.InstanceLocation[0]] = expected(leaf.InstanceLocation[0])
			continue
		}
		if extra, ok := leaf.ErrorKind.(*kind.AdditionalProperties); ok {
			for _, name := range extra.Properties {
				bad[name] = "not a parameter; the parameters are " + strings.Join(paramNames[:len(paramNames)-1], ", ") +
					" and " + paramNames[len(paramNames)-1]
			}
			continue
		}
		bad[""] = "the parameters must be a JSON object"
	}
	return bad
}

func leaves(e *jsonschema.ValidationError) []*jsonschema.ValidationError {
	if len(e.Causes) == 0 {
		return []*jsonschema.ValidationError{e}
	}
	var out []*jsonschema.ValidationError
	for _, c := range e.Causes {
		out = append(out, leaves(c)...)
	}
	return slices.Clip(out)
}
