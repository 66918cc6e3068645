package search_test

import (
	"slices"
	"testing"

	"github.com/fhirsub/fhirsub/conformance/search"
)

// TestMatchFocusIsMatch: the cases of TestMatch, each resource one focus
// that all its queries share, in the table's order and then in reverse
// (so that another query evaluates each parameter first), give what Match
// gives.
func TestMatchFocusIsMatch(t *testing.T) {
	byFile := map[string][]matchCase{}
	for _, tc := range matchCases {
		byFile[tc.file] = append(byFile[tc.file], tc)
	}
	for file, cases := range byFile {
		for _, order := range []string{"forward", "reverse"} {
			if order == "reverse" {
				cases = slices.Clone(cases)
				slices.Reverse(cases)
			}
			focus := search.NewFocus(mustLoad(t, file))
			for _, tc := range cases {
				q, err := search.ParseCriteria(tc.criteria)
				if err != nil {
					t.Fatalf("parse %q: %v", tc.criteria, err)
				}
				got, err := q.MatchFocus(focus)
				if err != nil || got != tc.want {
					t.Errorf("%s, %s: MatchFocus(%s) on %s = %v, %v; want %v", tc.name, order, tc.criteria, file, got, err, tc.want)
				}
			}
		}
	}
}

// TestMatchFocusNil: a focus without a resource matches no query.
func TestMatchFocusNil(t *testing.T) {
	q, err := search.ParseCriteria("Observation?status=final")
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := q.MatchFocus(search.NewFocus(nil)); ok || err != nil {
		t.Errorf("MatchFocus(nil focus) = %v, %v; want false, nil", ok, err)
	}
}
