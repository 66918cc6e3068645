package match

import "github.com/fhirsub/fhirsub/conformance/search"

// KeyIndex finds the subscriptions on one resource type whose criteria
// can match a resource, from the resource's exact search keys: each
// subscription (an E) is filed under the keys of its most selective
// equality clause (Selective), or in residual when it has none, so that
// the cost of a change does not grow with the subscriptions that cannot
// match it. It is not safe for concurrent use: its owner locks.
type KeyIndex[E comparable] struct {
	byKey    map[search.Key]map[E]struct{}
	residual map[E]struct{}
}

// NewKeyIndex returns an empty index.
func NewKeyIndex[E comparable]() *KeyIndex[E] {
	return &KeyIndex[E]{byKey: map[search.Key]map[E]struct{}{}, residual: map[E]struct{}{}}
}

func (ki *KeyIndex[E]) Add(e E, keys []search.Key) {
	if len(keys) == 0 {
		ki.residual[e] = struct{}{}
		return
	}
	for _, k := range keys {
		set := ki.byKey[k]
		if set == nil {
			set = map[E]struct{}{}
			ki.byKey[k] = set
		}
		set[e] = struct{}{}
	}
}

func (ki *KeyIndex[E]) Remove(e E, keys []search.Key) {
	if len(keys) == 0 {
		delete(ki.residual, e)
		return
	}
	for _, k := range keys {
		if set := ki.byKey[k]; set != nil {
			delete(set, e)
			if len(set) == 0 {
				delete(ki.byKey, k)
			}
		}
	}
}

func (ki *KeyIndex[E]) Empty() bool { return len(ki.byKey) == 0 && len(ki.residual) == 0 }

// Candidates calls fn once for every entry that may match a resource with
// the given keys.
func (ki *KeyIndex[E]) Candidates(keys []search.Key, fn func(E)) {
	for e := range ki.residual {
		fn(e)
	}
	var seen map[E]struct{}
	for _, k := range keys {
		set := ki.byKey[k]
		if len(set) == 0 {
			continue
		}
		for e := range set {
			if seen != nil {
				if _, dup := seen[e]; dup {
					continue
				}
			}
			if seen == nil {
				seen = map[E]struct{}{}
			}
			seen[e] = struct{}{}
			fn(e)
		}
	}
}

// Selective picks the most selective OR-group of exact keys: the one
// with the fewest keys, preferring reference-like parameters that name one
// resource (patient, subject, …) on ties. nil means no equality clause.
func Selective(groups [][]search.Key) []search.Key {
	var best []search.Key
	for _, g := range groups {
		if len(g) == 0 {
			continue
		}
		if best == nil || len(g) < len(best) || len(g) == len(best) && rank(g[0].Param) < rank(best[0].Param) {
			best = g
		}
	}
	return best
}

func rank(param string) int {
	switch param {
	case "_id":
		return 0
	case "patient", "subject", "beneficiary":
		return 1
	case "encounter", "identifier", "requester", "recipient", "owner", "performer", "based-on":
		return 2
	case "code":
		return 3
	}
	return 4
}
