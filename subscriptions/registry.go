package subscriptions

import (
	"cmp"
	"log/slog"
	"slices"
	"sync"

	"github.com/fhirsub/fhirsub/conformance/search"
	"github.com/fhirsub/fhirsub/subscriptions/delivery"
	"github.com/fhirsub/fhirsub/topics"
)

// registry is the set of subscriptions and topics this node knows, with
// the matcher's index of the live ones. It is the one owner of that state
// and its lock: the matcher asks it for candidates, the write hooks and
// the deliverer put what they parsed, and every reader gets a snapshot.
type registry struct {
	mu   sync.RWMutex
	subs map[string]*entry // every known subscription, any status
	// holds are the quota places of creates in flight (quota.go).
	holds quotaHolds
	// deleted is the tombstone version of each deleted subscription, so
	// that an older version met later in the change feed does not bring
	// it back (a re-create gets a higher version).
	deleted  map[string]int64
	idx      *index
	topicIDs map[string]namedTopic // SubscriptionTopic id → its topic as last applied
	topicSeq uint64                // orders the topics of topicIDs as they were applied
	topicVer map[string]int64      // SubscriptionTopic id → newest version applied (deletes too)
	followed map[string]int64      // SubscriptionTopic id → newest version its subscriptions moved to
	// sched gets the timing of every subscription put or dropped, under
	// the same lock, so that the timers follow the known state exactly.
	sched *delivery.Schedule
}

func newRegistry(sched *delivery.Schedule) *registry {
	return &registry{
		subs:     map[string]*entry{},
		deleted:  map[string]int64{},
		idx:      newIndex(),
		topicIDs: map[string]namedTopic{},
		topicVer: map[string]int64{},
		followed: map[string]int64{},
		sched:    sched,
	}
}

// get returns the current parsed state of a subscription.
func (r *registry) get(id string) (*Subscription, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if e := r.subs[id]; e != nil {
		return e.sub, true
	}
	return nil, false
}

// reflects reports whether the registry already reflects version of
// subscription id: it holds that version or a later one, or a delete
// after it. Putting that version again would change nothing.
func (r *registry) reflects(id, version string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	v := versionNumber(version)
	if e := r.subs[id]; e != nil {
		return e.sub.VersionID == version || (v > 0 && versionNumber(e.sub.VersionID) >= v)
	}
	gone, ok := r.deleted[id]
	return ok && v > 0 && gone >= v
}

// all returns every known subscription, in no particular order.
func (r *registry) all() []*Subscription {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]*Subscription, 0, len(r.subs))
	for _, e := range r.subs {
		out = append(out, e.sub)
	}
	return out
}

// pick returns the known subscriptions among ids, once each.
func (r *registry) pick(ids []string) []*Subscription {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []*Subscription
	for _, id := range ids {
		if e := r.subs[id]; e != nil && !slices.Contains(out, e.sub) {
			out = append(out, e.sub)
		}
	}
	return out
}

// len returns the number of known subscriptions.
func (r *registry) len() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.subs)
}

// put records a parsed subscription and (re)files it in the index. A
// version older than the known one is ignored (put reports whether it
// changed anything). since is the feed position after which a newly
// indexed subscription matches; an already indexed one keeps its own.
func (r *registry) put(s *Subscription, since int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.putLocked(s, since)
}

// putAll puts subscriptions met at start-up, each matching changes after
// its seq in starts (after every change when it has none).
func (r *registry) putAll(subs []*Subscription, starts map[string]int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range subs {
		r.putLocked(s, starts[s.ID])
	}
}

// putFirst is put with first, if not nil, called before s is filed when
// the registry knows nothing of s.ID yet (no version put, none deleted):
// nothing can have matched it so far, and nothing can until putFirst
// returns.
func (r *registry) putFirst(s *Subscription, since int64, first func()) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.firstLocked(s.ID, first)
	return r.putLocked(s, since)
}

func (r *registry) firstLocked(id string, first func()) {
	if first == nil {
		return
	}
	_, known := r.subs[id]
	_, gone := r.deleted[id]
	if !known && !gone {
		first()
	}
}

// putCreated puts a subscription whose write committed, calling first as
// putFirst does; a create also ends the quota hold its owner took for it.
func (r *registry) putCreated(s *Subscription, since int64, created bool, first func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if created {
		r.releaseQuotaLocked(s.Access)
	}
	r.firstLocked(s.ID, first)
	r.putLocked(s, since)
}

func (r *registry) putLocked(s *Subscription, since int64) bool {
	old := r.subs[s.ID]
	if old != nil && versionNumber(old.sub.VersionID) > versionNumber(s.VersionID) {
		return false
	}
	if gone, ok := r.deleted[s.ID]; ok {
		if versionNumber(s.VersionID) <= gone {
			return false // a version from before the delete
		}
		delete(r.deleted, s.ID)
	}
	e := &entry{sub: s, since: since, filed: s.Status != StatusOff}
	if old != nil && old.filed {
		e.since = old.since
	} else {
		old = nil // nothing to take out of the index
	}
	r.subs[s.ID] = e
	r.sched.Track(s.ID, timingOf(s))
	if !e.filed {
		if old != nil {
			r.idx.unfile(old)
		}
		return true
	}
	r.idx.refile(e, old)
	return true
}

// drop forgets a subscription deleted by the tombstone version version
// and reports whether it was known.
func (r *registry) drop(id, version string) (known bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.subs[id]
	known = e != nil
	delete(r.subs, id)
	if known && e.filed {
		r.idx.unfile(e)
	}
	r.sched.Untrack(id)
	if v := versionNumber(version); v > r.deleted[id] {
		r.deleted[id] = v
	}
	return known
}

// inPartition returns the ids of the known subscriptions of partition p
// of n.
func (r *registry) inPartition(p, n int) []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []string
	for id := range r.subs {
		if Partition(id, n) == p {
			out = append(out, id)
		}
	}
	return out
}

// countByStatus adds the number of known subscriptions per status to out.
func (r *registry) countByStatus(out map[Status]int) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, e := range r.subs {
		out[e.sub.Status]++
	}
}

// interested reports whether some live subscription can match a change
// of resource type typ.
func (r *registry) interested(typ string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.idx.classic[typ] != nil || len(r.idx.byType[typ]) > 0
}

// watching reports whether classic subscriptions are filed under resource
// type typ, and the topic versions of the groups that watch it.
func (r *registry) watching(typ string) (classic bool, versions []*topics.Topic) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, g := range r.idx.byType[typ] {
		versions = append(versions, g.topic)
	}
	return r.idx.classic[typ] != nil, versions
}

// candidates returns the subscriptions a resource of type typ with the
// search keys keys may match: the classic ones (with classic) and those of
// the topic groups whose version fired says the change triggers. Both are
// read under one lock, so a subscription that moves meanwhile (to a new
// version of its topic, or from criteria to a topic) is found once; read
// apart, the groups of before and the candidates of after missed it. ok
// is false, and the caller asks again, when a group's version is not in
// fired or keys are needed without haveKeys: the index changed since
// watching.
func (r *registry) candidates(typ string, keys []search.Key, haveKeys, classic bool,
	fired map[*topics.Topic]bool) (plain, topical []*entry, ok bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if ki := r.idx.classic[typ]; ki != nil && classic {
		if !haveKeys {
			return nil, nil, false
		}
		ki.Candidates(keys, func(e *entry) { plain = append(plain, e) })
	}
	for _, g := range r.idx.byType[typ] {
		f, known := fired[g.topic]
		if !known || f && !haveKeys {
			return nil, nil, false
		}
		if ki := g.byType[typ]; ki != nil && f {
			ki.Candidates(keys, func(e *entry) { topical = append(topical, e) })
		}
	}
	return plain, topical, true
}

// namedTopic is the topic a SubscriptionTopic resource says, with the
// order it was applied in.
type namedTopic struct {
	t   *topics.Topic
	seq uint64
}

// topicURL returns the canonical URL of the SubscriptionTopic id ("" when
// unknown).
func (r *registry) topicURL(id string) string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if n, ok := r.topicIDs[id]; ok {
		return n.t.URL
	}
	return ""
}

// topicsNamed returns the topics of the SubscriptionTopic resources whose
// canonical URL is url, in the order they were applied (the last is the
// one the URL stands for).
func (r *registry) topicsNamed(url string) []*topics.Topic {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var named []namedTopic
	for _, n := range r.topicIDs {
		if n.t.URL == url {
			named = append(named, n)
		}
	}
	slices.SortFunc(named, func(a, b namedTopic) int { return cmp.Compare(a.seq, b.seq) })
	out := make([]*topics.Topic, len(named))
	for i, n := range named {
		out[i] = n.t
	}
	return out
}

// topicInUse reports whether a subscription that is not off uses the
// topic url.
func (r *registry) topicInUse(url string) bool { return len(r.liveOn(url)) > 0 }

// refusedBy returns a subscription on topic url (not off) with a filter
// that topic version t does not allow, and why; "" when t allows every
// filter of them. The filters are parsed again outside the lock: a topic
// may have many subscriptions.
func (r *registry) refusedBy(url string, t *topics.Topic) (id string, err error) {
	for _, s := range r.liveOn(url) {
		for _, f := range s.Filters {
			if _, err := t.Rebind(f); err != nil {
				return s.ID, err
			}
		}
	}
	return "", nil
}

// liveOn returns the subscriptions that are not off on topic url.
func (r *registry) liveOn(url string) []*Subscription {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []*Subscription
	for _, e := range r.subs {
		if s := e.sub; s.Topic != nil && s.Topic.URL == url && s.Status != StatusOff {
			out = append(out, s)
		}
	}
	return out
}

// knowTopic records that SubscriptionTopic id is version v of topic t.
func (r *registry) knowTopic(id string, t *topics.Topic, v int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.nameTopicLocked(id, t)
	r.topicVer[id] = v
	r.followed[id] = v
}

// newerTopic records version v of SubscriptionTopic id as applied, and
// reports false when a version as new was applied already.
func (r *registry) newerTopic(id string, v int64) bool { return r.raise(r.topicVer, id, v) }

// newerFollowed records that the subscriptions of SubscriptionTopic id
// follow its version v, and reports false when they follow one as new
// already.
func (r *registry) newerFollowed(id string, v int64) bool { return r.raise(r.followed, id, v) }

// raise sets versions[id] to v unless it is as large already, and reports
// whether it did.
func (r *registry) raise(versions map[string]int64, id string, v int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if v <= versions[id] {
		return false
	}
	versions[id] = v
	return true
}

// nameTopic records that SubscriptionTopic id now says topic t.
func (r *registry) nameTopic(id string, t *topics.Topic) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.nameTopicLocked(id, t)
}

func (r *registry) nameTopicLocked(id string, t *topics.Topic) {
	r.topicSeq++
	r.topicIDs[id] = namedTopic{t, r.topicSeq}
}

// forgetTopic forgets the URL of a deleted SubscriptionTopic and returns
// it ("" when unknown).
func (r *registry) forgetTopic(id string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	n, ok := r.topicIDs[id]
	if !ok {
		return ""
	}
	delete(r.topicIDs, id)
	return n.t.URL
}

// followTopic moves the subscriptions naming the URL of topic version t
// without a version to it; a subscription whose filters the new version
// refuses keeps the old one. (committedTopic records the topic's URL
// under its id: nameTopic.)
func (r *registry) followTopic(t *topics.Topic, log *slog.Logger) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.subs {
		s := e.sub
		if s.Topic == nil || s.TopicURL() != t.URL || s.Topic == t {
			continue
		}
		moved := *s
		moved.Topic = t
		moved.Filters = nil
		ok := true
		for _, f := range s.Filters {
			nf, err := t.Rebind(f)
			if err != nil {
				log.Warn("subscription filter no longer valid for the new topic version; keeping the old topic",
					"subscription", s.ID, "topic", t.URL, "err", err)
				ok = false
				break
			}
			moved.Filters = append(moved.Filters, nf)
		}
		if ok {
			r.putLocked(&moved, 0)
		}
	}
}
