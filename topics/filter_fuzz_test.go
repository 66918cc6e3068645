package topics_test

import (
	"slices"
	"strings"
	"testing"
)

func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{
		"Encounter?patient=Patient/123",
		"Encounter.patient=Patient/123",
		"patient=Patient/123",
		"Encounter?subject=Patient/p1&length=gt60",
		"length:missing=true",
		"length=ne60",
		"Observation?patient=Patient/1",
		"?", "", "=", "&&", "Encounter.", ".patient=x", "patient=%zz",
		"subject.name=peter", "Encounter?patient=a,b,,c", "Encounter?_count=1",
		"Encounter.patient=1&Encounter.patient=2", "patient:=x", "length=gt",
	} {
		f.Add(s)
	}
	tp := mustParse(f, encounterComplete)
	focus := mustJSON(f, `{"resourceType":"Encounter","id":"e1","status":"finished",
		"subject":{"reference":"Patient/123"},"length":{"value":90,"code":"min","system":"http://unitsofmeasure.org"}}`)
	f.Fuzz(func(t *testing.T, s string) {
		flt, err := tp.ParseFilter(s)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		if !slices.Contains(tp.ResourceTypes(), flt.ResourceType()) {
			t.Fatalf("ParseFilter(%q) = %+v", s, flt)
		}
		// a subscription re-filed under a new version of its topic is
		// parsed again from the canonical form
		if again, err := tp.Rebind(flt); err != nil || again.String() != flt.String() {
			t.Fatalf("ParseFilter(%q) (rebound from %q) = %v, %v", flt, s, again, err)
		}
		if strings.TrimSpace(s) == "" {
			t.Fatalf("ParseFilter accepted a blank filter %q", s)
		}
		if _, err := flt.Match(focus); err != nil && err.Error() == "" {
			t.Fatal("empty error message")
		}
	})
}
