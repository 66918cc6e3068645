package sqlite

import (
	"cmp"
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"testing"

	"github.com/fhirsub/fhirsub/conformance/search"
	"github.com/fhirsub/fhirsub/fhirstore"
)

func k(p, v string) search.Key { return search.Key{Param: p, Value: v} }

func sortRows(rs []keyRow) []keyRow {
	slices.SortFunc(rs, func(a, b keyRow) int {
		return cmp.Or(cmp.Compare(a.param, b.param), cmp.Compare(a.value, b.value), cmp.Compare(a.sys, b.sys))
	})
	return rs
}

// expand lists the values rows stand for, under every parameter.
func expand(rows []keyRow) []string {
	var out []string
	for _, r := range rows {
		out = append(out, r.value)
		if r.sys != alone {
			out = append(out, r.sys+"|"+r.value)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// values lists the distinct values of keys.
func values(keys []search.Key) []string {
	var out []string
	for _, k := range keys {
		out = append(out, k.Value)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func TestFoldKeys(t *testing.T) {
	for _, c := range []struct {
		name string
		keys []search.Key
		want []keyRow
	}{
		{"a token with a system", []search.Key{k("code", "8867-4"), k("code", "http://loinc.org|8867-4")},
			[]keyRow{{"code", "8867-4", "http://loinc.org"}}},
		{"a token without a system", []search.Key{k("status", "final"), k("status", "|final")},
			[]keyRow{{"status", "final", ""}}},
		{"one code in two systems", []search.Key{k("code", "1"), k("code", "a|1"), k("code", "b|1")},
			[]keyRow{{"code", "1", "a"}, {"code", "1", "b"}}},
		{"a reference and a uri stay alone", []search.Key{k("subject", "Patient/1"), k("url", "http://x|1.0"), k("url", "http://x")},
			[]keyRow{{"subject", "Patient/1", alone}, {"url", "http://x", alone}, {"url", "http://x|1.0", alone}}},
		{"only the same parameter folds", []search.Key{k("a", "1"), k("b", "s|1")},
			[]keyRow{{"a", "1", alone}, {"b", "s|1", alone}}},
		{"a code that has a bar", []search.Key{k("c", "x|y"), k("c", "s|x|y"), k("c", "y")},
			[]keyRow{{"c", "x|y", "s"}, {"c", "y", "x"}}},
		{"unsorted with a duplicate", []search.Key{k("c", "s|1"), k("c", "1"), k("c", "s|1")},
			[]keyRow{{"c", "1", "s"}}},
		{"one reference under two parameters", []search.Key{k("subject", "Patient/1"), k("patient", "Patient/1")},
			[]keyRow{{"patient", "Patient/1", alone}}},
		{"code and combo-code", []search.Key{k("combo-code", "8867-4"), k("combo-code", "http://loinc.org|8867-4"),
			k("code", "8867-4"), k("code", "http://loinc.org|8867-4"), k("combo-code", "x")},
			[]keyRow{{"code", "8867-4", "http://loinc.org"}, {"combo-code", "x", alone}}},
		{"a folded token and the same code alone", []search.Key{k("a", "1"), k("a", "s|1"), k("b", "1")},
			[]keyRow{{"a", "1", "s"}, {"b", "1", alone}}},
		{"many keys", manyKeys(), manyRows()},
	} {
		got := sortRows(foldKeys(c.keys))
		if !slices.Equal(got, sortRows(c.want)) {
			t.Errorf("%s: rows %v, want %v", c.name, got, c.want)
		}
		if back, want := expand(got), values(c.keys); !slices.Equal(back, want) {
			t.Errorf("%s: rows stand for %v, want %v", c.name, back, want)
		}
	}
}

func TestDiffKeys(t *testing.T) {
	tok := []search.Key{k("code", "1"), k("code", "s|1")}
	for _, c := range []struct {
		name                string
		prev, next          []search.Key
		wantAdded, wantGone []keyRow
	}{
		{"create", nil, append(slices.Clone(tok), k("subject", "Patient/1")),
			[]keyRow{{"code", "1", "s"}, {"subject", "Patient/1", alone}}, nil},
		{"same keys", tok, tok, nil, nil},
		{"a token's system goes", tok, []search.Key{k("code", "1")},
			[]keyRow{{"code", "1", alone}}, []keyRow{{"code", "1", "s"}}},
		{"update", []search.Key{k("a", "1"), k("b", "2")}, []search.Key{k("a", "1"), k("c", "3")},
			[]keyRow{{"c", "3", alone}}, []keyRow{{"b", "2", alone}}},
		{"a value moves between parameters", []search.Key{k("a", "1"), k("b", "1")}, []search.Key{k("a", "1"), k("c", "1")},
			nil, nil},
		{"the first parameter of a value goes", []search.Key{k("a", "1"), k("b", "1")}, []search.Key{k("b", "1"), k("c", "1")},
			[]keyRow{{"b", "1", alone}}, []keyRow{{"a", "1", alone}}},
		{"delete", tok, nil, nil, []keyRow{{"code", "1", "s"}}},
	} {
		added, removed := diffKeys(c.prev, c.next)
		if !slices.Equal(sortRows(added), c.wantAdded) || !slices.Equal(sortRows(removed), c.wantGone) {
			t.Errorf("%s: added %v removed %v, want %v and %v", c.name, added, removed, c.wantAdded, c.wantGone)
		}
	}
}

// manyKeys are 40 values under two parameters each (p and q), past the
// size at which oneParam looks rows up in a map.
func manyKeys() []search.Key {
	var out []search.Key
	for i := range 40 {
		v := fmt.Sprint(i)
		out = append(out, k("q", v), k("p", v))
	}
	return out
}

// manyRows are the rows of manyKeys: one per value, of p.
func manyRows() []keyRow {
	var out []keyRow
	for i := range 40 {
		out = append(out, keyRow{"p", fmt.Sprint(i), alone})
	}
	return out
}

// TestFoldedRowsFollowWrites: a value a resource has under two parameters
// is one row; updates that take it from the first parameter, then from
// both, and a delete leave exactly the rows foldKeys makes of the live
// keys, and searches on either parameter find what they should.
func TestFoldedRowsFollowWrites(t *testing.T) {
	ctx := context.Background()
	db := openForTest(t, filepath.Join(t.TempDir(), "fhir.db"))
	find := func(param, value string) []string {
		t.Helper()
		q, err := search.Parse("Observation", url.Values{param: {value}})
		if err != nil {
			t.Fatal(err)
		}
		page, err := db.Search(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, r := range page.Resources {
			ids = append(ids, r.ID)
		}
		return ids
	}
	check := func(when string, want map[[2]string][]string) {
		t.Helper()
		if got, exp := storedRows(t, db), expectedRows(t, db); !slices.Equal(got, exp) {
			t.Errorf("%s: rows %v, want %v", when, got, exp)
		}
		for pv, ids := range want {
			if got := find(pv[0], pv[1]); !slices.Equal(got, ids) {
				t.Errorf("%s: %s=%s found %v, want %v", when, pv[0], pv[1], got, ids)
			}
		}
	}
	obs := func(subject string) map[string]any {
		return map[string]any{"resourceType": "Observation", "status": "final",
			"code":    map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": "8867-4"}}},
			"subject": map[string]any{"reference": subject}}
	}
	res, err := db.Create(ctx, obs("Patient/1"))
	if err != nil {
		t.Fatal(err)
	}
	id := res.ID
	check("created", map[[2]string][]string{
		{"patient", "Patient/1"}: {id}, {"subject", "Patient/1"}: {id}, {"combo-code", "8867-4"}: {id},
	})
	if n := len(storedRows(t, db)); n != 3 {
		t.Errorf("%d rows for status, code and subject, want 3", n)
	}
	update := func(body map[string]any) {
		t.Helper()
		body["id"] = id
		if _, _, err := db.Update(ctx, id, body, fhirstore.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	update(obs("Group/1")) // patient no longer applies; subject changes value
	check("subject a Group", map[[2]string][]string{
		{"patient", "Patient/1"}: nil, {"subject", "Patient/1"}: nil, {"subject", "Group/1"}: {id}, {"patient", "Group/1"}: nil,
	})
	update(obs("Patient/1")) // both again
	check("subject a Patient again", map[[2]string][]string{
		{"patient", "Patient/1"}: {id}, {"subject", "Group/1"}: nil,
	})
	if _, err := db.Delete(ctx, "Observation", id, fhirstore.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	check("deleted", map[[2]string][]string{{"patient", "Patient/1"}: nil})
	if n := len(storedRows(t, db)); n != 0 {
		t.Errorf("%d rows left after the delete", n)
	}
}
