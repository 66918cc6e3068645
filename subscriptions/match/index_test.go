package match

import (
	"slices"
	"testing"

	"github.com/fhirsub/fhirsub/conformance/search"
)

func key(p, v string) search.Key { return search.Key{Param: p, Value: v} }

func candidates(ki *KeyIndex[string], keys ...search.Key) []string {
	var out []string
	ki.Candidates(keys, func(e string) { out = append(out, e) })
	slices.Sort(out)
	return out
}

// TestKeyIndexCandidates: a resource finds the subscriptions filed under
// one of its keys, each once, and those without an equality clause.
func TestKeyIndexCandidates(t *testing.T) {
	ki := NewKeyIndex[string]()
	p1, p2 := key("patient", "Patient/p1"), key("patient", "Patient/p2")
	ki.Add("a", []search.Key{p1})
	ki.Add("both", []search.Key{p1, p2})
	ki.Add("b", []search.Key{p2})
	ki.Add("any", nil)
	if got := candidates(ki, p1, key("code", "x")); !slices.Equal(got, []string{"a", "any", "both"}) {
		t.Errorf("candidates of p1 = %v, want a, any, both", got)
	}
	ki.Remove("a", []search.Key{p1})
	ki.Remove("any", nil)
	if got := candidates(ki, p1, p2); !slices.Equal(got, []string{"b", "both"}) {
		t.Errorf("candidates of p1, p2 after removals = %v, want b, both", got)
	}
	ki.Remove("both", []search.Key{p1, p2})
	ki.Remove("b", []search.Key{p2})
	if !ki.Empty() {
		t.Error("index not empty after every removal")
	}
}

// TestSelective: the OR-group with the fewest keys wins; on a tie, a
// parameter that names one resource.
func TestSelective(t *testing.T) {
	codes := []search.Key{key("code", "a"), key("code", "b")}
	subject := []search.Key{key("subject", "Patient/p1")}
	code := []search.Key{key("code", "a")}
	if got := Selective([][]search.Key{codes, subject}); !slices.Equal(got, subject) {
		t.Errorf("Selective(2 codes, subject) = %v, want the subject", got)
	}
	if got := Selective([][]search.Key{code, subject}); !slices.Equal(got, subject) {
		t.Errorf("Selective(code, subject) = %v, want the subject on the tie", got)
	}
	if got := Selective([][]search.Key{nil}); got != nil {
		t.Errorf("Selective(no keys) = %v, want nil", got)
	}
}

// TestKeyIndexManyOnOneKey: a key shared by more subscriptions than a
// small set holds keeps every one of them, each once (added twice or
// not), through removals on either side of the switch to a map.
func TestKeyIndexManyOnOneKey(t *testing.T) {
	for _, n := range []int{smallSet - 1, smallSet, smallSet + 1, 3 * smallSet} {
		ki := NewKeyIndex[string]()
		p1 := key("patient", "Patient/p1")
		var want []string
		for i := range n {
			e := string(rune('a' + i))
			ki.Add(e, []search.Key{p1})
			ki.Add(e, []search.Key{p1}) // a re-add files it once
			want = append(want, e)
		}
		slices.Sort(want)
		if got := candidates(ki, p1); !slices.Equal(got, want) {
			t.Fatalf("n=%d: candidates = %v, want %v", n, got, want)
		}
		for i, e := range want {
			ki.Remove(e, []search.Key{p1})
			if got := candidates(ki, p1); !slices.Equal(got, want[i+1:]) {
				t.Fatalf("n=%d: after removing %s candidates = %v, want %v", n, e, got, want[i+1:])
			}
		}
		if !ki.Empty() {
			t.Errorf("n=%d: index not empty after every removal", n)
		}
	}
}
