package search_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// mustLoad decodes testdata/name the way fhirsub decodes resources
// (json.Number for numbers).
func mustLoad(tb testing.TB, name string) map[string]any {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	return mustDecode(tb, b)
}

func mustDecode(tb testing.TB, b []byte) map[string]any {
	tb.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var res map[string]any
	if err := dec.Decode(&res); err != nil {
		tb.Fatal(err)
	}
	return res
}

// mustLoadAll loads every resource of testdata.
func mustLoadAll(tb testing.TB) []map[string]any {
	tb.Helper()
	names, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil || len(names) == 0 {
		tb.Fatalf("no testdata resources: %v", err)
	}
	var out []map[string]any
	for _, n := range names {
		out = append(out, mustLoad(tb, filepath.Base(n)))
	}
	return out
}
