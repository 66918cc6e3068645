package subscriptions

import (
	"cmp"
	"slices"

	"github.com/fhirsub/fhirsub/conformance/search"
	"github.com/fhirsub/fhirsub/topics"
)

// entry is one subscription placed in the index.
type entry struct {
	sub *Subscription
	// since: the subscription matches only changes with a larger seq (the
	// feed position when it was registered).
	since int64
}

// keyIndex finds the subscriptions on one resource type whose criteria
// can match a resource, from the resource's exact search keys: each
// subscription is filed under the keys of its most selective equality
// clause, or in residual when it has none.
type keyIndex struct {
	byKey    map[search.Key]map[*entry]struct{}
	residual map[*entry]struct{}
}

func newKeyIndex() *keyIndex {
	return &keyIndex{byKey: map[search.Key]map[*entry]struct{}{}, residual: map[*entry]struct{}{}}
}

func (ki *keyIndex) add(e *entry, keys []search.Key) {
	if len(keys) == 0 {
		ki.residual[e] = struct{}{}
		return
	}
	for _, k := range keys {
		set := ki.byKey[k]
		if set == nil {
			set = map[*entry]struct{}{}
			ki.byKey[k] = set
		}
		set[e] = struct{}{}
	}
}

func (ki *keyIndex) remove(e *entry, keys []search.Key) {
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

func (ki *keyIndex) empty() bool { return len(ki.byKey) == 0 && len(ki.residual) == 0 }

// candidates calls fn once for every entry that may match a resource with
// the given keys.
func (ki *keyIndex) candidates(keys []search.Key, fn func(*entry)) {
	for e := range ki.residual {
		fn(e)
	}
	var seen map[*entry]struct{}
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
				seen = map[*entry]struct{}{}
			}
			seen[e] = struct{}{}
			fn(e)
		}
	}
}

// placement records where an entry was filed, to remove it.
type placement struct {
	ki   *keyIndex
	keys []search.Key
	// typ and group locate ki for pruning empty indexes.
	typ   string
	group *topicGroup
}

// topicGroup holds the subscriptions of one topic version.
type topicGroup struct {
	topic  *topics.Topic
	byType map[string]*keyIndex // focus resource type → subscriptions
	count  int
}

// index is the matcher's view of the active subscriptions. It is not
// safe for concurrent use: the Manager guards it.
type index struct {
	classic map[string]*keyIndex   // resource type → classic subscriptions
	groups  map[string]*topicGroup // topic canonical → group
	byType  map[string][]*topicGroup
	placed  map[string]*placed // subscription id → where it is
}

type placed struct {
	e   *entry
	pls []placement
}

func newIndex() *index {
	return &index{
		classic: map[string]*keyIndex{},
		groups:  map[string]*topicGroup{},
		byType:  map[string][]*topicGroup{},
		placed:  map[string]*placed{},
	}
}

// get returns the indexed entry of a subscription, or nil.
func (ix *index) get(id string) *entry {
	if p := ix.placed[id]; p != nil {
		return p.e
	}
	return nil
}

// put files (or re-files) a subscription.
func (ix *index) put(e *entry) {
	ix.remove(e.sub.ID)
	p := &placed{e: e}
	s := e.sub
	if s.Criteria != nil {
		ki := ix.classic[s.Criteria.Type]
		if ki == nil {
			ki = newKeyIndex()
			ix.classic[s.Criteria.Type] = ki
		}
		keys := selective(s.Criteria.Narrow())
		ki.add(e, keys)
		p.pls = append(p.pls, placement{ki: ki, keys: keys, typ: s.Criteria.Type})
	} else {
		canon := s.Topic.Canonical()
		g := ix.groups[canon]
		if g == nil {
			g = &topicGroup{topic: s.Topic, byType: map[string]*keyIndex{}}
			ix.groups[canon] = g
			for _, rt := range s.Topic.ResourceTypes() {
				ix.byType[rt] = append(ix.byType[rt], g)
			}
		}
		g.count++
		for _, rt := range s.Topic.ResourceTypes() {
			var groups [][]search.Key
			for _, f := range s.Filters {
				if f.ResourceType == rt {
					groups = append(groups, f.Query.Narrow()...)
				}
			}
			ki := g.byType[rt]
			if ki == nil {
				ki = newKeyIndex()
				g.byType[rt] = ki
			}
			keys := selective(groups)
			ki.add(e, keys)
			p.pls = append(p.pls, placement{ki: ki, keys: keys, typ: rt, group: g})
		}
	}
	ix.placed[s.ID] = p
}

// remove takes a subscription out of the index.
func (ix *index) remove(id string) {
	p := ix.placed[id]
	if p == nil {
		return
	}
	delete(ix.placed, id)
	var g *topicGroup
	for _, pl := range p.pls {
		pl.ki.remove(p.e, pl.keys)
		if pl.group == nil && pl.ki.empty() {
			delete(ix.classic, pl.typ)
		}
		g = cmp.Or(g, pl.group)
	}
	if g == nil {
		return
	}
	if g.count--; g.count > 0 {
		return
	}
	delete(ix.groups, g.topic.Canonical())
	for _, rt := range g.topic.ResourceTypes() {
		ix.byType[rt] = slices.DeleteFunc(ix.byType[rt], func(x *topicGroup) bool { return x == g })
		if len(ix.byType[rt]) == 0 {
			delete(ix.byType, rt)
		}
	}
}

// selective picks the most selective OR-group of exact keys: the one
// with the fewest keys, preferring reference-like parameters that name one
// resource (patient, subject, …) on ties. nil means no equality clause.
func selective(groups [][]search.Key) []search.Key {
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
