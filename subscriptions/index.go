package subscriptions

import (
	"slices"

	"github.com/fhirsub/fhirsub/conformance/search"
	"github.com/fhirsub/fhirsub/subscriptions/match"
	"github.com/fhirsub/fhirsub/topics"
)

// entry is one known subscription, as the registry holds it, and as the
// index files it when it is live. An entry is never changed once put: a
// new version of the subscription gets a new entry, so that the matcher
// may read one it found under the lock after the lock is released.
type entry struct {
	sub *Subscription
	// since: the subscription matches only changes with a larger seq (the
	// feed position when it was registered).
	since int64
	// filed: the index holds the entry (the subscription is not off).
	filed bool
}

// topicGroup holds the subscriptions of one topic version.
type topicGroup struct {
	topic  *topics.Topic
	byType map[string]*match.KeyIndex[*entry] // focus resource type → subscriptions
	count  int
}

// index is the matcher's view of the live subscriptions. It is not safe
// for concurrent use: the registry guards it. It keeps no map by
// subscription id of its own (that was ~40 bytes a subscription): the
// registry knows each subscription's entry, and unfile finds where an
// entry is filed from its subscription, which does not change.
type index struct {
	classic map[string]*match.KeyIndex[*entry] // resource type → classic subscriptions
	// groups is keyed by the topic version itself, not by its canonical
	// URL: two versions of a topic without a version element share one,
	// and a group's triggers are those of its own version.
	groups map[*topics.Topic]*topicGroup
	byType map[string][]*topicGroup
}

func newIndex() *index {
	return &index{
		classic: map[string]*match.KeyIndex[*entry]{},
		groups:  map[*topics.Topic]*topicGroup{},
		byType:  map[string][]*topicGroup{},
	}
}

// refile files e in place of old (nil: none). The new entry goes in
// before the old one comes out, so that its topic group stays the same
// object and is never missing from the index. (The matcher once walked
// groups it had taken before asking each for candidates, and a group
// emptied and made again in between was one it walked empty: an
// activation racing a write lost that write's event. It now reads the
// groups and their candidates at once: registry.candidates.)
func (ix *index) refile(e, old *entry) {
	ix.file(e)
	if old != nil {
		ix.unfile(old)
	}
}

// file adds e to the key indexes of its subscription, making them (and
// its topic group) as needed.
func (ix *index) file(e *entry) {
	s := e.sub
	if s.Criteria != nil {
		ki := ix.classic[s.Criteria.Type]
		if ki == nil {
			ki = match.NewKeyIndex[*entry]()
			ix.classic[s.Criteria.Type] = ki
		}
		ki.Add(e, classicKeys(s))
		return
	}
	g := ix.groups[s.Topic]
	if g == nil {
		g = &topicGroup{topic: s.Topic, byType: map[string]*match.KeyIndex[*entry]{}}
		ix.groups[s.Topic] = g
		for _, rt := range s.Topic.ResourceTypes() {
			ix.byType[rt] = append(ix.byType[rt], g)
		}
	}
	g.count++
	for _, rt := range s.Topic.ResourceTypes() {
		ki := g.byType[rt]
		if ki == nil {
			ki = match.NewKeyIndex[*entry]()
			g.byType[rt] = ki
		}
		ki.Add(e, topicKeys(s, rt))
	}
}

// classicKeys are the keys a classic subscription is filed under.
func classicKeys(s *Subscription) []search.Key { return match.Selective(s.Criteria.Narrow()) }

// topicKeys are the keys a topic-based subscription is filed under in the
// index of focus resource type rt: from its filters on rt.
func topicKeys(s *Subscription, rt string) []search.Key {
	var groups [][]search.Key
	for _, f := range s.Filters {
		if f.ResourceType() == rt {
			groups = append(groups, f.Query.Narrow()...)
		}
	}
	return match.Selective(groups)
}

// unfile takes e out of the key indexes file put it in, found again from
// its subscription (which does not change), and drops what it leaves
// empty.
func (ix *index) unfile(e *entry) {
	s := e.sub
	if s.Criteria != nil {
		if ki := ix.classic[s.Criteria.Type]; ki != nil {
			ki.Remove(e, classicKeys(s))
			if ki.Empty() {
				delete(ix.classic, s.Criteria.Type)
			}
		}
		return
	}
	g := ix.groups[s.Topic]
	if g == nil {
		return
	}
	for _, rt := range s.Topic.ResourceTypes() {
		if ki := g.byType[rt]; ki != nil {
			ki.Remove(e, topicKeys(s, rt))
		}
	}
	if g.count--; g.count > 0 {
		return
	}
	delete(ix.groups, g.topic)
	for _, rt := range g.topic.ResourceTypes() {
		ix.byType[rt] = slices.DeleteFunc(ix.byType[rt], func(x *topicGroup) bool { return x == g })
		if len(ix.byType[rt]) == 0 {
			delete(ix.byType, rt)
		}
	}
}
