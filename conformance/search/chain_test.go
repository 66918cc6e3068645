package search_test

import (
	"context"
	"errors"
	"testing"

	"github.com/fhirsub/fhirsub/conformance/search"
)

// memResolver is a Resolver over a fixed set of resources; hidden ids are
// what the caller may not see.
type memResolver struct {
	all    []map[string]any
	hidden map[string]bool
	reads  int
}

func (m *memResolver) visible(r map[string]any) bool {
	return !m.hidden[r["resourceType"].(string)+"/"+r["id"].(string)]
}

func (m *memResolver) Read(_ context.Context, typ, id string) (map[string]any, error) {
	m.reads++
	for _, r := range m.all {
		if r["resourceType"] == typ && r["id"] == id && m.visible(r) {
			return r, nil
		}
	}
	return nil, nil
}

func (m *memResolver) Search(_ context.Context, q *search.Query) ([]map[string]any, error) {
	var out []map[string]any
	for _, r := range m.all {
		ok, err := q.Match(r)
		if err != nil {
			return nil, err
		}
		if ok && m.visible(r) {
			out = append(out, r)
		}
	}
	return out, nil
}

func chainWorld(t *testing.T) *memResolver {
	d := func(s string) map[string]any { return mustDecode(t, []byte(s)) }
	return &memResolver{all: []map[string]any{
		d(`{"resourceType":"Organization","id":"o1","name":"Acme Clinic"}`),
		d(`{"resourceType":"Patient","id":"p1","name":[{"family":"Smith"}],"managingOrganization":{"reference":"Organization/o1"}}`),
		d(`{"resourceType":"Patient","id":"p2","name":[{"family":"Jones"}]}`),
		d(`{"resourceType":"Patient","id":"p3","name":[{"family":"Smith"}]}`),
		d(`{"resourceType":"Observation","id":"x1","status":"final","code":{"coding":[{"code":"hr"}]},"subject":{"reference":"Patient/p1"}}`),
		d(`{"resourceType":"Observation","id":"x2","status":"final","code":{"coding":[{"code":"bp"}]},"subject":{"reference":"Patient/p2"}}`),
		d(`{"resourceType":"Observation","id":"x3","status":"final","code":{"coding":[{"code":"hr"}]},"subject":{"reference":"Patient/p3"}}`),
	}, hidden: map[string]bool{}}
}

func ids(t *testing.T, r *memResolver, criteria string) []string {
	t.Helper()
	q, err := search.ParseCriteria(criteria)
	if err != nil {
		t.Fatalf("%s: %v", criteria, err)
	}
	if !q.HasLinks() {
		t.Fatalf("%s: no links", criteria)
	}
	rq, err := q.Resolve(context.Background(), r)
	if err != nil {
		t.Fatalf("%s: resolve: %v", criteria, err)
	}
	if !rq.MatchesNothing() {
		again, err := search.Parse(q.Type, rq.Values())
		if err != nil || again.HasLinks() {
			t.Fatalf("%s: resolved values %v do not parse as plain parameters: %v", criteria, rq.Values(), err)
		}
		rq = again
	}
	var out []string
	for _, res := range r.all {
		ok, err := rq.Match(res)
		if err != nil {
			t.Fatalf("%s: match: %v", criteria, err)
		}
		linked, err := q.MatchLinked(context.Background(), res, r)
		if err != nil {
			t.Fatalf("%s: MatchLinked: %v", criteria, err)
		}
		if ok != linked {
			t.Errorf("%s on %s: resolved match %v, linked match %v", criteria, res["id"], ok, linked)
		}
		if ok {
			out = append(out, res["id"].(string))
		}
	}
	return out
}

func TestChainsAndHas(t *testing.T) {
	r := chainWorld(t)
	for _, tc := range []struct {
		criteria string
		want     string
	}{
		{"Observation?subject:Patient.name=smith", "[x1 x3]"},
		{"Observation?subject.name=jones", "[x2]"},
		{"Observation?subject:Patient.organization.name=acme", "[x1]"},
		{"Observation?subject:Patient.organization:Organization.name=nobody", "[]"},
		{"Observation?subject:Patient.name=smith&code=hr&subject:Patient.organization.name=acme", "[x1]"},
		{"Patient?_has:Observation:subject:code=hr", "[p1 p3]"},
		{"Patient?_has:Observation:patient:code=bp", "[p2]"},
		{"Patient?_has:Observation:subject:code=none", "[]"},
	} {
		got := ids(t, r, tc.criteria)
		if s := fmtIDs(got); s != tc.want {
			t.Errorf("%s = %s, want %s", tc.criteria, s, tc.want)
		}
	}
	// The resolver's access decides: a hidden patient is never reached.
	r.hidden["Patient/p3"] = true
	if s := fmtIDs(ids(t, r, "Observation?subject:Patient.name=smith")); s != "[x1]" {
		t.Errorf("with p3 hidden, the chain found %s, want [x1]", s)
	}
	r.hidden["Observation/x1"] = true
	if s := fmtIDs(ids(t, r, "Patient?_has:Observation:subject:code=hr")); s != "[p3]" {
		t.Errorf("with x1 hidden, _has found %s, want [p3]", s)
	}
}

func TestUnresolvedNeverMatches(t *testing.T) {
	r := chainWorld(t)
	q, err := search.ParseCriteria("Observation?subject:Patient.name=smith")
	if err != nil {
		t.Fatal(err)
	}
	ok, err := q.Match(r.all[4])
	if ok || !errors.Is(err, search.ErrUnresolved) {
		t.Fatalf("Match of an unresolved chain = %v, %v; want false, ErrUnresolved", ok, err)
	}
}

func fmtIDs(ids []string) string {
	s := "["
	for i, id := range ids {
		if i > 0 {
			s += " "
		}
		s += id
	}
	return s + "]"
}
