package httpsd

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/prometheus/common/model"

	"github.com/alphagov/cf-app-discovery/targets"
)

// group is one target group of the view: its JSON, as Prometheus gets it,
// and the labels the filters read.
type group struct {
	org, space string
	json       []byte
}

// parseTargetFile returns the groups of a target file, or an error when
// the file is not a JSON array of target groups Prometheus would accept:
// one bad group would make Prometheus refuse the whole answer.
func parseTargetFile(body []byte) ([]group, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var parsed []*targets.TargetGroup
	if err := dec.Decode(&parsed); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("data after the array of target groups")
	}
	if parsed == nil {
		return nil, errors.New("not an array of target groups")
	}
	groups := make([]group, 0, len(parsed))
	for i, tg := range parsed {
		if tg == nil || tg.Targets == nil {
			return nil, fmt.Errorf("group %d has no targets", i)
		}
		if tg.Labels == nil {
			tg.Labels = map[string]string{}
		}
		for name := range tg.Labels {
			// Names as Prometheus 2 accepts them too.
			if !model.LegacyValidation.IsValidLabelName(name) {
				return nil, fmt.Errorf("group %d: invalid label name %.80q", i, name)
			}
		}
		groups = append(groups, group{org: tg.Labels["org"], space: tg.Labels["space"], json: compact(tg)})
	}
	return groups, nil
}

// compact encodes a group on one line, labels sorted, without the HTML
// escaping that the target files do not have either.
func compact(tg *targets.TargetGroup) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	// Encoding plain strings, slices and string maps cannot fail.
	_ = enc.Encode(tg)
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// snapshot is one state of the view: its groups in key order, and the
// answer to a request without filters, made once, plain and gzipped.
type snapshot struct {
	groups  []group
	body    []byte
	gzipped []byte
}

func newSnapshot(files map[string]file) *snapshot {
	s := &snapshot{}
	for _, key := range sortedKeys(files) {
		s.groups = append(s.groups, files[key].groups...)
	}
	s.body = encode(s.groups)
	s.gzipped = compress(s.body)
	return s
}

// encode writes groups as one JSON array.
func encode(groups []group) []byte {
	size := 3
	for _, g := range groups {
		size += len(g.json) + 1
	}
	out := make([]byte, 0, size)
	out = append(out, '[')
	for i, g := range groups {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, g.json...)
	}
	return append(out, ']', '\n')
}

// filter returns the groups of org and space; an empty name matches any.
func filter(groups []group, org, space string) []group {
	var out []group
	for _, g := range groups {
		if (org == "" || g.org == org) && (space == "" || g.space == space) {
			out = append(out, g)
		}
	}
	return out
}

func compress(body []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	// Writing to a bytes.Buffer cannot fail.
	_, _ = zw.Write(body)
	_ = zw.Close()
	return buf.Bytes()
}
