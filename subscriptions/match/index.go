package match

import (
	"slices"

	"github.com/fhirsub/fhirsub/conformance/search"
)

// KeyIndex finds the subscriptions on one resource type whose criteria
// can match a resource, from the resource's exact search keys: each
// subscription (an E) is filed under the keys of its most selective
// equality clause (Selective), or in residual when it has none, so that
// the cost of a change does not grow with the subscriptions that cannot
// match it. It is not safe for concurrent use: its owner locks.
type KeyIndex[E comparable] struct {
	byKey    map[search.Key]keySet[E]
	residual map[E]struct{}
}

// smallSet is how many entries a key holds in a slice before it moves
// them to a map. Most keys name one resource (patient=Patient/123) and
// hold one or a few subscriptions: a one-entry slice costs 8 bytes where
// a one-entry map costs ~180, and 100,000 subscriptions hold 100,000 such
// keys. A key shared by many subscriptions gets the map, so that removal
// stays O(1).
const smallSet = 8

// keySet is the entries filed under one key: few until it outgrows
// smallSet, many from then on.
type keySet[E comparable] struct {
	few  []E
	many map[E]struct{}
}

func (s keySet[E]) len() int { return len(s.few) + len(s.many) }

func (s keySet[E]) add(e E) keySet[E] {
	if s.many != nil {
		s.many[e] = struct{}{}
		return s
	}
	if slices.Contains(s.few, e) {
		return s
	}
	if len(s.few) < smallSet {
		s.few = append(s.few, e)
		return s
	}
	s.many = make(map[E]struct{}, len(s.few)+1)
	for _, x := range s.few {
		s.many[x] = struct{}{}
	}
	s.many[e] = struct{}{}
	s.few = nil
	return s
}

func (s keySet[E]) remove(e E) keySet[E] {
	if s.many != nil {
		delete(s.many, e)
		return s
	}
	if i := slices.Index(s.few, e); i >= 0 {
		last := len(s.few) - 1
		s.few[i] = s.few[last]
		var zero E
		s.few[last] = zero // no stale reference past the length
		s.few = s.few[:last]
	}
	return s
}

func (s keySet[E]) each(fn func(E)) {
	for _, e := range s.few {
		fn(e)
	}
	for e := range s.many {
		fn(e)
	}
}

// NewKeyIndex returns an empty index.
func NewKeyIndex[E comparable]() *KeyIndex[E] {
	return &KeyIndex[E]{byKey: map[search.Key]keySet[E]{}, residual: map[E]struct{}{}}
}

// Add files e under keys (in residual when there are none).
func (ki *KeyIndex[E]) Add(e E, keys []search.Key) {
	if len(keys) == 0 {
		ki.residual[e] = struct{}{}
		return
	}
	for _, k := range keys {
		ki.byKey[k] = ki.byKey[k].add(e)
	}
}

// Remove takes e from under keys (the keys it was added with).
func (ki *KeyIndex[E]) Remove(e E, keys []search.Key) {
	if len(keys) == 0 {
		delete(ki.residual, e)
		return
	}
	for _, k := range keys {
		set, ok := ki.byKey[k]
		if !ok {
			continue
		}
		if set = set.remove(e); set.len() == 0 {
			delete(ki.byKey, k)
		} else {
			ki.byKey[k] = set
		}
	}
}

// Empty reports whether nothing is filed.
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
		if set.len() == 0 {
			continue
		}
		set.each(func(e E) {
			if seen != nil {
				if _, dup := seen[e]; dup {
					return
				}
			}
			if seen == nil {
				seen = map[E]struct{}{}
			}
			seen[e] = struct{}{}
			fn(e)
		})
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
