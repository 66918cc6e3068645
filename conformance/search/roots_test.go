package search

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// TestRootsSkipOnlyEmpty checks the shortcut of eval against the full
// evaluation: on every testdata resource, and on each of its variants with
// one top-level element removed, a parameter eval skips must select
// nothing, and eval must select what the expression selects.
func TestRootsSkipOnlyEmpty(t *testing.T) {
	names, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil || len(names) == 0 {
		t.Fatalf("no testdata resources: %v", err)
	}
	var checked, skipped int
	for _, name := range names {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		var res map[string]any
		if err := dec.Decode(&res); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		variants := []map[string]any{res}
		for k := range res {
			if k == "resourceType" {
				continue
			}
			v := make(map[string]any, len(res))
			for k2, x := range res {
				if k2 != k {
					v[k2] = x
				}
			}
			variants = append(variants, v)
		}
		rt := res["resourceType"].(string)
		for _, p := range paramsOf(rt).list {
			if p.expr == nil {
				continue
			}
			for _, v := range variants {
				want, err := p.expr.Evaluate(v, nil)
				if err != nil {
					continue // eval reports the same error
				}
				got, err := p.eval(v)
				if err != nil {
					t.Fatalf("%s %s: %v", name, p.code, err)
				}
				checked++
				if p.roots != nil && !present(v, p.roots) {
					skipped++
				}
				if len(got) != len(want) || len(want) > 0 && !reflect.DeepEqual(got, want) {
					var roots []string
					if p.roots != nil {
						roots = p.roots.names
					}
					t.Errorf("%s: %s (roots %v) selects %d nodes, eval %d", name, p.code, roots, len(want), len(got))
				}
			}
		}
	}
	t.Logf("%d evaluations compared, %d skipped by their roots", checked, skipped)
	if skipped == 0 || skipped == checked {
		t.Fatalf("the comparison exercised no skip or only skips (%d of %d)", skipped, checked)
	}
}

func TestPathRoots(t *testing.T) {
	for _, c := range []struct {
		typ, src string
		want     []string
	}{
		{"Observation", "Observation.code | Observation.component.code", []string{"code", "component"}},
		{"Observation", "(Observation.value.ofType(Quantity)) | (Observation.value.ofType(SampledData))", []string{"value", "value"}},
		{"Observation", "Observation.subject.where(resolve() is Patient)", []string{"subject"}},
		{"Patient", "Patient.deceased.exists() and Patient.deceased != false", nil},
		{"Patient", "Patient.telecom.where(system='email')", nil},
		{"Observation", "(Observation.value.ofType(string)) | (Observation.value.ofType(CodeableConcept)).text", nil},
		{"Observation", "Observation", nil},
		{"Observation", "Observation.extension('http://x')", nil},
	} {
		if got := pathRoots(c.src, c.typ); !reflect.DeepEqual(got, c.want) {
			t.Errorf("pathRoots(%q) = %q, want %q", c.src, got, c.want)
		}
	}
}

// TestPresent checks the lookups present makes: an element, its primitive
// extension, and the typed names of a choice element, which are looked
// for only when a root is a choice or not in the definitions.
func TestPresent(t *testing.T) {
	code := newRootSet([]string{"code", "component"}, "Observation")
	value := newRootSet([]string{"value"}, "Observation")
	unknown := newRootSet([]string{"notAnElement"}, "Observation")
	if code.choice || !value.choice || !unknown.choice {
		t.Fatalf("choice: code %v, value %v, unknown %v; want false, true, true", code.choice, value.choice, unknown.choice)
	}
	if newRootSet(nil, "Observation") != nil {
		t.Error("newRootSet(nil) is not nil")
	}
	for _, c := range []struct {
		rs   *rootSet
		res  map[string]any
		want bool
	}{
		{code, map[string]any{"code": map[string]any{}}, true},
		{code, map[string]any{"component": []any{}}, true},
		{code, map[string]any{"_code": map[string]any{}}, true},
		{code, map[string]any{"codeQuantity": 1, "status": "final"}, false},
		{code, map[string]any{"status": "final"}, false},
		{value, map[string]any{"valueQuantity": map[string]any{}}, true},
		{value, map[string]any{"_valueString": map[string]any{}}, true},
		{value, map[string]any{"value": 1}, true},
		{value, map[string]any{"valuequantity": 1, "values": 2, "code": 3}, false},
		{unknown, map[string]any{"notAnElementX": 1}, true},
		{unknown, map[string]any{"notAnElementx": 1}, false},
	} {
		if got := present(c.res, c.rs); got != c.want {
			t.Errorf("present(%v, %v) = %v, want %v", c.res, c.rs.names, got, c.want)
		}
	}
}
