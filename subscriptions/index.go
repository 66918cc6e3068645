package subscriptions

import (
	"cmp"
	"slices"

	"github.com/fhirsub/fhirsub/conformance/search"
	"github.com/fhirsub/fhirsub/subscriptions/match"
	"github.com/fhirsub/fhirsub/topics"
)

// entry is one subscription placed in the index.
type entry struct {
	sub *Subscription
	// since: the subscription matches only changes with a larger seq (the
	// feed position when it was registered).
	since int64
}

// placement records where an entry was filed, to remove it.
type placement struct {
	ki   *match.KeyIndex[*entry]
	keys []search.Key
	// typ and group locate ki for pruning empty indexes.
	typ   string
	group *topicGroup
}

// topicGroup holds the subscriptions of one topic version.
type topicGroup struct {
	topic  *topics.Topic
	byType map[string]*match.KeyIndex[*entry] // focus resource type → subscriptions
	count  int
}

// index is the matcher's view of the active subscriptions. It is not
// safe for concurrent use: the Manager guards it.
type index struct {
	classic map[string]*match.KeyIndex[*entry] // resource type → classic subscriptions
	groups  map[string]*topicGroup             // topic canonical → group
	byType  map[string][]*topicGroup
	placed  map[string]*placed // subscription id → where it is
}

type placed struct {
	e   *entry
	pls []placement
}

func newIndex() *index {
	return &index{
		classic: map[string]*match.KeyIndex[*entry]{},
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
			ki = match.NewKeyIndex[*entry]()
			ix.classic[s.Criteria.Type] = ki
		}
		keys := match.Selective(s.Criteria.Narrow())
		ki.Add(e, keys)
		p.pls = append(p.pls, placement{ki: ki, keys: keys, typ: s.Criteria.Type})
	} else {
		canon := s.Topic.Canonical()
		g := ix.groups[canon]
		if g == nil {
			g = &topicGroup{topic: s.Topic, byType: map[string]*match.KeyIndex[*entry]{}}
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
				ki = match.NewKeyIndex[*entry]()
				g.byType[rt] = ki
			}
			keys := match.Selective(groups)
			ki.Add(e, keys)
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
		pl.ki.Remove(p.e, pl.keys)
		if pl.group == nil && pl.ki.Empty() {
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
