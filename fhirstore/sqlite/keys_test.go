package sqlite

import (
	"slices"
	"strings"
	"testing"

	"github.com/fhirsub/fhirsub/conformance/search"
)

func TestDiffKeys(t *testing.T) {
	k := func(p, v string) search.Key { return search.Key{Param: p, Value: v} }
	sortKeys := func(ks []search.Key) []search.Key {
		slices.SortFunc(ks, func(a, b search.Key) int {
			if a.Param != b.Param {
				return strings.Compare(a.Param, b.Param)
			}
			return strings.Compare(a.Value, b.Value)
		})
		return ks
	}
	for _, c := range []struct {
		name                string
		prev, next          []search.Key
		wantAdded, wantGone []search.Key
	}{
		{"create, sorted", nil, []search.Key{k("a", "1"), k("a", "2"), k("b", "1")},
			[]search.Key{k("a", "1"), k("a", "2"), k("b", "1")}, nil},
		{"create, unsorted with a duplicate", nil, []search.Key{k("b", "1"), k("a", "1"), k("b", "1")},
			[]search.Key{k("a", "1"), k("b", "1")}, nil},
		{"update", []search.Key{k("a", "1"), k("b", "1")}, []search.Key{k("a", "1"), k("c", "1")},
			[]search.Key{k("c", "1")}, []search.Key{k("b", "1")}},
		{"delete", []search.Key{k("a", "1")}, nil, nil, []search.Key{k("a", "1")}},
	} {
		added, removed := diffKeys(c.prev, c.next)
		if !slices.Equal(sortKeys(added), c.wantAdded) || !slices.Equal(sortKeys(removed), c.wantGone) {
			t.Errorf("%s: added %v removed %v, want %v and %v", c.name, added, removed, c.wantAdded, c.wantGone)
		}
	}
}
