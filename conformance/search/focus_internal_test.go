package search

import (
	"encoding/json"
	"testing"

	"github.com/fhirsub/fhirsub/conformance/fhirpath"
)

// TestFocusEvaluatesEachParameterOnce: three queries on two parameters,
// and the same queries again, leave two evaluations in the focus; each
// query still gets its own answer from the shared nodes.
func TestFocusEvaluatesEachParameterOnce(t *testing.T) {
	var res map[string]any
	if err := json.Unmarshal([]byte(`{"resourceType":"Observation","id":"o1","status":"final",
		"subject":{"reference":"Patient/p1"}}`), &res); err != nil {
		t.Fatal(err)
	}
	f := NewFocus(res)
	first := map[*param]*fhirpath.Value{} // the nodes of each parameter's first evaluation
	for _, tc := range []struct {
		criteria string
		want     bool
	}{
		{"Observation?subject=Patient/p1", true},
		{"Observation?subject=Patient/p2", false},
		{"Observation?status=final&subject=Patient/p1", true},
		{"Observation?subject=Patient/p1", true},
		{"Observation?status=amended", false},
	} {
		q, err := ParseCriteria(tc.criteria)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := q.MatchFocus(f); got != tc.want || err != nil {
			t.Errorf("MatchFocus(%s) = %v, %v; want %v", tc.criteria, got, err, tc.want)
		}
		for p, e := range f.evals {
			if len(e.nodes) == 0 {
				t.Fatalf("%s selected nothing", p.code)
			}
			if was, ok := first[p]; !ok {
				first[p] = &e.nodes[0]
			} else if was != &e.nodes[0] {
				t.Errorf("after %s, %s was evaluated again", tc.criteria, p.code)
			}
		}
	}
	if len(f.evals) != 2 {
		t.Errorf("%d parameters evaluated, want 2 (subject, status)", len(f.evals))
	}
}
