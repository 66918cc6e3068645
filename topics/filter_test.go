package topics_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/fhirsub/fhirsub/conformance/search"
	"github.com/fhirsub/fhirsub/topics"
)

func TestParseFilterShapes(t *testing.T) {
	tp := mustParse(t, encounterComplete)
	for _, s := range []string{
		"Encounter?patient=Patient/123",
		"Encounter.patient=Patient/123",
		"patient=Patient/123",
		"?patient=Patient/123",
		"http://hl7.org/fhir/StructureDefinition/Encounter?patient=Patient/123",
		"  Encounter?patient=Patient/123  ",
	} {
		t.Run(s, func(t *testing.T) {
			f, err := tp.ParseFilter(s)
			if err != nil {
				t.Fatalf("ParseFilter: %v", err)
			}
			if f.ResourceType() != "Encounter" || f.String() != "Encounter?patient=Patient/123" {
				t.Errorf("filter %+v", f)
			}
			mine := encounter(t, "finished")
			mine["subject"] = map[string]any{"reference": "Patient/123"}
			if ok, err := f.Match(mine); !ok || err != nil {
				t.Errorf("Match(patient 123) = %v, %v", ok, err)
			}
			if ok, err := f.Match(encounter(t, "finished")); ok || err != nil {
				t.Errorf("Match(patient p1) = %v, %v", ok, err)
			}
		})
	}
}

func TestParseFilterSeveralParameters(t *testing.T) {
	tp := mustParse(t, encounterComplete)
	long := encounter(t, "finished")
	long["length"] = map[string]any{"value": 90, "unit": "min", "system": "http://unitsofmeasure.org", "code": "min"}
	for _, s := range []string{
		"Encounter?subject=Patient/p1&length=gt60",
		"Encounter.subject=Patient/p1&Encounter.length=gt60",
		"subject=Patient/p1&length=gt60",
	} {
		f, err := tp.ParseFilter(s)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if ok, err := f.Match(long); !ok || err != nil {
			t.Errorf("%s: Match(90 min) = %v, %v", s, ok, err)
		}
		if ok, _ := f.Match(encounter(t, "finished")); ok {
			t.Errorf("%s: matched an encounter without length", s)
		}
	}
}

func TestParseFilterRefusals(t *testing.T) {
	enc := mustParse(t, encounterComplete)
	multi := mustBuiltIn(t, "new-order")
	tests := []struct {
		name   string
		topic  *topics.Topic
		filter string
		param  string
		msg    string
	}{
		{"empty", enc, "", "", "empty"},
		{"no parameters", enc, "Encounter?", "", "no parameters"},
		{"param not in canFilterBy", enc, "Encounter?status=finished", "status", "does not allow"},
		{"unknown param", enc, "colour=red", "colour", "does not allow"},
		{"modifier not allowed", enc, "patient:missing=true", "patient:missing", "modifier"},
		{"modifier allowed", enc, "length:missing=true", "", ""},
		{"comparator not allowed", enc, "length=ne60", "length", "comparator"},
		{"comparator allowed", enc, "length=ge60", "", ""},
		{"explicit eq always allowed", enc, "length=eq60", "", ""},
		{"type not in topic", enc, "Observation?patient=Patient/1", "", "Observation"},
		{"dotted type not in topic", enc, "Observation.patient=Patient/1", "", "Observation"},
		{"implied type, several types", multi, "patient=Patient/1", "", "several resource types"},
		{"mixed types", multi, "ServiceRequest.patient=Patient/1&MedicationRequest.patient=Patient/1", "", "mix"},
		{"allowed on a multi-type topic", multi, "MedicationRequest?patient=Patient/1&status:not=cancelled", "", ""},
		{"modifier not allowed on that param", multi, "ServiceRequest?patient:missing=true", "patient:missing", "modifier"},
		{"performer param differs by type", multi, "MedicationRequest?performer=Practitioner/1", "performer", "does not allow"},
		{"chained", enc, "subject.name=peter", "subject.name", ""},
		{"control parameter", enc, "_count=10", "_count", "does not allow"},
		{"malformed escape", enc, "patient=%zz", "", "malformed"},
		{"bad date prefix value", enc, "length=gtabc", "length", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := tc.topic.ParseFilter(tc.filter)
			if tc.msg == "" && tc.param == "" {
				if err != nil {
					t.Fatalf("ParseFilter(%q): %v", tc.filter, err)
				}
				again, err := tc.topic.Rebind(f)
				if err != nil || again.String() != f.String() {
					t.Errorf("ParseFilter(%q) (rebound from %q) = %v, %v", f, tc.filter, again, err)
				}
				return
			}
			var fe *topics.FilterError
			if !errors.As(err, &fe) {
				t.Fatalf("ParseFilter(%q) error = %v, want a *FilterError", tc.filter, err)
			}
			if fe.Param != tc.param || !strings.Contains(fe.Message, tc.msg) {
				t.Errorf("got param %q message %q; want param %q, message containing %q", fe.Param, fe.Message, tc.param, tc.msg)
			}
			if !strings.Contains(err.Error(), tc.filter) {
				t.Errorf("error %q does not quote the filter", err)
			}
		})
	}
}

func TestFilterMatchOtherType(t *testing.T) {
	tp := mustBuiltIn(t, "new-order")
	sr, err := tp.ParseFilter("ServiceRequest?patient=Patient/p1")
	if err != nil {
		t.Fatal(err)
	}
	mr, err := tp.ParseFilter("MedicationRequest.patient=Patient/p1")
	if err != nil {
		t.Fatal(err)
	}
	filters := []*topics.Filter{sr, mr}
	for _, tc := range []struct {
		focus map[string]any
		want  bool
	}{
		{order(t, "ServiceRequest", "active", ""), true},
		{order(t, "MedicationRequest", "active", ""), true},
		{mustJSON(t, `{"resourceType":"ServiceRequest","status":"active","subject":{"reference":"Patient/p2"}}`), false},
		{mustJSON(t, `{"resourceType":"MedicationRequest","status":"active","subject":{"reference":"Patient/p2"}}`), false},
	} {
		got, err := topics.MatchAll(filters, search.NewFocus(tc.focus))
		if err != nil || got != tc.want {
			t.Errorf("MatchAll(%v %v) = %v, %v; want %v", tc.focus["resourceType"], tc.focus["subject"], got, err, tc.want)
		}
	}
	if ok, _ := topics.MatchAll(nil, search.NewFocus(order(t, "ServiceRequest", "active", ""))); !ok {
		t.Error("no filters should match")
	}
	if ok, _ := sr.Match(nil); ok {
		t.Error("a nil focus should not match")
	}
}

func TestBuiltInFilters(t *testing.T) {
	crit := mustBuiltIn(t, "critical-result")
	f, err := crit.ParseFilter("Observation?patient=Patient/p1&code=http://loinc.org|2823-3&category=laboratory")
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := f.Match(obs(t, "final", "HH")); !ok || err != nil {
		t.Errorf("Match = %v, %v", ok, err)
	}
	g, err := crit.ParseFilter("code=http://loinc.org|6298-4")
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := g.Match(obs(t, "final", "HH")); ok {
		t.Error("another code matched")
	}
	task := mustBuiltIn(t, "task")
	h, err := task.ParseFilter("owner=Practitioner/a")
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := h.Match(order(t, "Task", "requested", "Practitioner/a")); !ok {
		t.Error("owner filter did not match")
	}
	if _, err := mustBuiltIn(t, "communication").ParseFilter("recipient=Practitioner/b&patient=Patient/p1"); err != nil {
		t.Error(err)
	}
}
