package topics_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/fhirsub/fhirsub/topics"
)

// mustJSON decodes JSON the way the server does (numbers as json.Number).
func mustJSON(tb testing.TB, src string) map[string]any {
	tb.Helper()
	dec := json.NewDecoder(strings.NewReader(src))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		tb.Fatalf("decode %s: %v", src, err)
	}
	return m
}

// mustParse parses a topic from JSON.
func mustParse(tb testing.TB, src string) *topics.Topic {
	tb.Helper()
	t, err := topics.Parse(mustJSON(tb, src))
	if err != nil {
		tb.Fatalf("Parse: %v", err)
	}
	return t
}

// mustBuiltIn returns the built-in topic with the name.
func mustBuiltIn(tb testing.TB, name string) *topics.Topic {
	tb.Helper()
	for _, t := range topics.BuiltIn() {
		if t.URL == topics.BuiltInBase+name {
			return t
		}
	}
	tb.Fatalf("no built-in topic %q", name)
	return nil
}
