package httpsd

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"

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

// snapshot is one state of the view: its groups in key order and its
// answers, each made once, plain and gzipped: the answer without filters
// when the snapshot is made, a filtered one when it is first asked for.
type snapshot struct {
	groups []group
	all    *answer

	mu       sync.Mutex
	filtered map[filters]*answer
	// cached is the size of the filtered answers kept, bounded by
	// cacheBudget so that many distinct filters cannot grow it without end.
	cached int
}

// filters are the org and space a request asks for; empty means any.
type filters struct{ org, space string }

// answer is the body of an answer, plain and gzipped, made once.
type answer struct {
	once    sync.Once
	body    []byte
	gzipped []byte
}

func (a *answer) make(groups []group) *answer {
	a.once.Do(func() {
		a.body = encode(groups)
		a.gzipped = compress(a.body)
	})
	return a
}

func newSnapshot(files map[string]file) *snapshot {
	s := &snapshot{filtered: map[filters]*answer{}}
	for _, key := range sortedKeys(files) {
		s.groups = append(s.groups, files[key].groups...)
	}
	s.all = new(answer).make(s.groups)
	return s
}

// answer returns the answer for f. Concurrent first requests for the same
// filters wait for one of them to make it.
func (s *snapshot) answer(f filters) *answer {
	if f == (filters{}) {
		return s.all
	}
	s.mu.Lock()
	a, ok := s.filtered[f]
	cache := !ok && s.cached < s.cacheBudget()
	if !ok {
		a = &answer{}
		if cache {
			s.filtered[f] = a
		}
	}
	s.mu.Unlock()
	a.make(filter(s.groups, f))
	if cache {
		s.mu.Lock()
		s.cached += len(a.body) + len(a.gzipped)
		s.mu.Unlock()
	}
	return a
}

// cacheBudget is room for every org, every space and every org and space
// filter, each of which partitions the groups, with some to spare.
func (s *snapshot) cacheBudget() int {
	return 4*(len(s.all.body)+len(s.all.gzipped)) + 1<<20
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

// filter returns the groups of f.
func filter(groups []group, f filters) []group {
	var out []group
	for _, g := range groups {
		if (f.org == "" || g.org == f.org) && (f.space == "" || g.space == f.space) {
			out = append(out, g)
		}
	}
	return out
}

// gzipWriters keeps gzip writers for reuse: making one allocates and
// clears about 1 MB, more than compressing a filtered answer costs.
var gzipWriters = sync.Pool{New: func() any { return gzip.NewWriter(nil) }}

func compress(body []byte) []byte {
	var buf bytes.Buffer
	zw := gzipWriters.Get().(*gzip.Writer)
	defer gzipWriters.Put(zw)
	zw.Reset(&buf)
	// Writing to a bytes.Buffer cannot fail.
	_, _ = zw.Write(body)
	_ = zw.Close()
	return buf.Bytes()
}
