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
					t.Errorf("%s: %s (roots %v) selects %d nodes, eval %d", name, p.code, p.roots, len(want), len(got))
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
