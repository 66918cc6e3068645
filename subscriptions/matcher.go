package subscriptions

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/fhirsub/fhirsub/conformance/search"
	"github.com/fhirsub/fhirsub/fhirstore"
	"github.com/fhirsub/fhirsub/subscriptions/match"
	"github.com/fhirsub/fhirsub/topics"
)

// matcher is the second stage of the pipeline (web writes → change feed →
// matcher → event log → delivery): the match.Tail hands it each change of
// the feed once, and it keeps the registry in step with Subscription and
// SubscriptionTopic changes, finds the subscriptions the change triggers
// (registry candidates, then topic triggers, filters, criteria and the
// owner's access), records their events together with the cursor
// (idempotent), and hands the recorded events to the next stage.
type matcher struct {
	store   fhirstore.Store
	events  fhirstore.EventStore
	reg     *registry
	taps    []Tap
	cursor  string
	now     func() time.Time
	log     *slog.Logger
	lag     *lagTracker
	stats   *counters
	skipped *skippedSet
	bodies  *bodies // requested versions kept for their activation
	next    matchOutput
}

// matchOutput is what the matcher needs from the rest of the pipeline.
type matchOutput interface {
	// parse reads a stored Subscription.
	parse(body map[string]any, res *fhirstore.Resource) (*Subscription, error)
	// subscriptionChanged says a subscription's known state changed (its
	// deliverer has work: a handshake, an end, a status).
	subscriptionChanged(id string)
	// topicCommitted applies a SubscriptionTopic version.
	topicCommitted(res *fhirstore.Resource) error
	// dispatch hands recorded events on to delivery.
	dispatch(ctx context.Context, evs []fhirstore.Event)
	// dropSubscription deletes a deleted subscription's events and
	// delivery state.
	dropSubscription(ctx context.Context, id string) error
	// firstLane returns what makes the delivery lane of s when the
	// registry meets its id for the first time (registry.putFirst), or
	// nil.
	firstLane(s *Subscription, in fhirstore.Interaction) func()
}

var _ match.BatchHandler = (*matcher)(nil)

// batchRecorder is an event store that records a batch of changes in one
// commit (fhirstore/sqlite); without it the matcher records change by
// change.
type batchRecorder interface {
	RecordMany(ctx context.Context, cursor string, recs []fhirstore.Recording) ([][]fhirstore.Event, error)
}

// maxBatch bounds the changes matched before their events are recorded
// together: the first change's notifications wait for the others'
// matching (tens of µs each) and one commit.
const maxBatch = 64

// Handle implements match.Handler: see process.
func (mt *matcher) Handle(ctx context.Context, c fhirstore.Change) (bool, error) {
	return mt.process(ctx, c, mt.cursor, true)
}

// SaveCursor implements match.Handler.
func (mt *matcher) SaveCursor(ctx context.Context, c fhirstore.Change) error {
	_, err := mt.events.Record(ctx, mt.cursor, c.Seq, c.Time, nil)
	return err
}

// Reading implements match.Handler: the matcher's lag.
func (mt *matcher) Reading(at time.Time) { mt.lag.matching(at) }

// HandleBatch implements match.BatchHandler: it matches a run of changes
// and records the events of all of them, with the cursor at the last, in
// one commit, then dispatches them in order. A Subscription or
// SubscriptionTopic change goes alone (see process); so does every change
// when the event store cannot record batches. A change that cannot be
// read ends the run before it (it then fails alone, and the Tail's retry
// and set-aside policy applies to it).
func (mt *matcher) HandleBatch(ctx context.Context, changes []fhirstore.Change) (int, bool, error) {
	rec, ok := mt.events.(batchRecorder)
	first := changes[0]
	if ok && first.Type == "Subscription" && !mt.reg.interested("Subscription") {
		return mt.subscriptionRun(ctx, rec, changes)
	}
	if !ok || first.Type == "Subscription" || first.Type == "SubscriptionTopic" {
		stored, err := mt.process(ctx, first, mt.cursor, true)
		if err != nil {
			return 0, false, err
		}
		return 1, stored, nil
	}
	var recs []fhirstore.Recording
	n, err := mt.readRun(ctx, changes, func(c fhirstore.Change) bool {
		return c.Type != "Subscription" && c.Type != "SubscriptionTopic"
	}, func(c fhirstore.Change, ch *loaded) {
		if matches := mt.match(c, ch); len(matches) > 0 {
			recs = append(recs, fhirstore.Recording{Seq: c.Seq, At: c.Time, Matches: matches})
		}
	})
	if err != nil {
		return 0, false, err
	}
	if len(recs) == 0 {
		mt.stats.recordedMany(n, 0)
		return n, false, nil
	}
	if last := changes[n-1]; recs[len(recs)-1].Seq != last.Seq {
		recs = append(recs, fhirstore.Recording{Seq: last.Seq, At: last.Time}) // the cursor moves to it
	}
	out, err := rec.RecordMany(ctx, mt.cursor, recs)
	if err != nil {
		return 0, false, err
	}
	events := 0
	for _, evs := range out {
		events += len(evs)
		mt.next.dispatch(ctx, evs)
	}
	mt.stats.recordedMany(n, events)
	return n, true, nil
}

// subscriptionRun applies a run of Subscription changes (a bulk of
// creates, each followed by its activation) and stores the cursor at the
// last in one commit. Alone, each would wait for a commit of its own,
// and thousands of new subscriptions would keep the matcher behind every
// write that follows. Batching them is exact only while no subscription
// watches Subscription resources: after a crash before the commit, the
// run is processed again with its subscriptions loaded from the store,
// and only a subscription on Subscription could then match a change from
// before it. So the run stops as soon as one exists (the caller checked
// before the first change).
func (mt *matcher) subscriptionRun(ctx context.Context, rec batchRecorder, changes []fhirstore.Change) (int, bool, error) {
	first := true
	n, err := mt.readRun(ctx, changes, func(c fhirstore.Change) bool {
		keep := c.Type == "Subscription" && (first || !mt.reg.interested("Subscription"))
		first = false
		return keep
	}, func(c fhirstore.Change, ch *loaded) { mt.feedSubscription(ctx, c, ch, true) })
	if err != nil {
		return 0, false, err
	}
	last := changes[n-1]
	if _, err := rec.RecordMany(ctx, mt.cursor, []fhirstore.Recording{{Seq: last.Seq, At: last.Time}}); err != nil {
		return 0, false, err
	}
	mt.stats.recordedMany(n, 0)
	return n, true, nil
}

// readRun reads the changes, at most maxBatch, while keep holds, and
// calls each with every change read. A change that cannot be read ends
// the run before it; it is an error only for the first (n is then 0).
func (mt *matcher) readRun(ctx context.Context, changes []fhirstore.Change, keep func(fhirstore.Change) bool,
	each func(fhirstore.Change, *loaded)) (n int, err error) {
	for _, c := range changes[:min(len(changes), maxBatch)] {
		if !keep(c) {
			break
		}
		ch, err := mt.read(ctx, c)
		if err != nil {
			if n == 0 {
				return 0, err
			}
			break
		}
		each(c, ch)
		n++
	}
	return n, nil
}

// read makes a change's versions available and hands them to the taps.
func (mt *matcher) read(ctx context.Context, c fhirstore.Change) (*loaded, error) {
	ch, err := mt.load(ctx, c)
	if err != nil {
		return nil, err
	}
	for _, t := range mt.taps {
		if err := t.Change(ctx, c, ch); err != nil {
			return nil, err
		}
	}
	return ch, nil
}

// process handles one change: subscription bookkeeping, matching,
// recording under cursor (idempotent, atomic with the cursor) and
// dispatch. With lazy, a change that matches nothing and is no
// Subscription or SubscriptionTopic write is not recorded: saved is false
// and the caller saves the cursor later. Subscription and topic changes
// always move the cursor, so that a restart never processes again, for a
// subscription it loads as new, a change from before that subscription.
func (mt *matcher) process(ctx context.Context, c fhirstore.Change, cursor string, lazy bool) (saved bool, err error) {
	ch, err := mt.read(ctx, c)
	if err != nil {
		return false, err
	}
	switch c.Type {
	case "Subscription":
		mt.feedSubscription(ctx, c, ch, false) // match reads ch after
	case "SubscriptionTopic":
		if ch.res != nil {
			if err := mt.next.topicCommitted(ch.res); err != nil {
				mt.log.Warn("stored SubscriptionTopic ignored", "id", c.ID, "err", err)
			}
		}
	}
	matches := mt.match(c, ch)
	if lazy && len(matches) == 0 && c.Type != "Subscription" && c.Type != "SubscriptionTopic" {
		mt.stats.recorded(0)
		return false, nil
	}
	evs, err := mt.events.Record(ctx, cursor, c.Seq, c.Time, matches)
	if err != nil {
		return false, err
	}
	mt.stats.recorded(len(evs))
	mt.next.dispatch(ctx, evs)
	return true, nil
}

// feedSubscription applies a Subscription change seen in the feed (covers
// the writes of other processes and the server's own status changes).
// With handOver, nothing reads ch after it, so a requested version's
// decoded body can go to its activation, which changes it.
func (mt *matcher) feedSubscription(ctx context.Context, c fhirstore.Change, ch *loaded, handOver bool) {
	if c.Interaction == fhirstore.InteractionDelete {
		if mt.reg.drop(c.ID, c.VersionID) {
			if err := mt.next.dropSubscription(ctx, c.ID); err != nil {
				mt.log.Warn("drop subscription events", "subscription", c.ID, "err", err)
			}
		}
		return
	}
	if mt.reg.reflects(c.ID, c.VersionID) {
		return // already applied (see load)
	}
	if ch.cur == nil {
		return
	}
	s, err := mt.next.parse(ch.cur, ch.res)
	if err != nil {
		mt.log.Warn("stored Subscription ignored", "id", c.ID, "err", err)
		return
	}
	if s.Status == StatusRequested && handOver {
		// for its activation, which would otherwise read it back, and so
		// that a write hook that comes after need not decode it again;
		// the taps have had it (subscriptionRun: no subscription is on
		// Subscription, nothing matches it)
		mt.bodies.keep(s.ID, s.VersionID, ch.cur, mt.now())
	}
	if mt.reg.putFirst(s, c.Seq, mt.next.firstLane(s, c.Interaction)) {
		mt.next.subscriptionChanged(s.ID)
	}
}

// match returns the subscriptions the change triggers, sorted by id.
func (mt *matcher) match(c fhirstore.Change, ch *loaded) []fhirstore.Match {
	if ch.res == nil {
		return nil
	}
	var out []fhirstore.Match
	add := func(e *entry, topic string) {
		out = append(out, fhirstore.Match{SubscriptionID: e.sub.ID, Topic: topic, Type: c.Type, ID: c.ID,
			VersionID: c.VersionID, Interaction: c.Interaction})
	}
	now := mt.now()
	live := func(e *entry) bool {
		return c.Seq > e.since && e.sub.Status != StatusOff && !e.sub.ended(now)
	}

	classic, topical := mt.candidates(c, ch)

	// Classic criteria: R4 applies them to the new version of creates and
	// updates; deletes are not notified (candidates gives none then).
	// One evaluation of each search parameter of the new version for all
	// the criteria, and for the filters below too.
	cur := search.NewFocus(ch.cur)
	for _, e := range classic {
		if !live(e) {
			continue
		}
		ok, err := matchCriteria(ch.ctx, mt.store, e.sub, cur)
		if err != nil {
			mt.log.Warn("subscription criteria failed", "subscription", e.sub.ID, "err", err)
			continue
		}
		if ok && ch.visible(e.sub) {
			add(e, "")
		}
	}

	if len(topical) > 0 {
		focus := cur
		if ch.cur == nil {
			focus = search.NewFocus(ch.focus()) // a delete: the previous version
		}
		for _, e := range topical {
			if !live(e) {
				continue
			}
			ok, err := topics.MatchAll(e.sub.Filters, focus)
			if err != nil {
				mt.log.Warn("subscription filter failed", "subscription", e.sub.ID, "err", err)
				continue
			}
			if ok && ch.visible(e.sub) {
				add(e, e.sub.TopicURL())
			}
		}
	}
	slices.SortFunc(out, func(a, b fhirstore.Match) int { return strings.Compare(a.SubscriptionID, b.SubscriptionID) })
	return slices.CompactFunc(out, func(a, b fhirstore.Match) bool { return a.SubscriptionID == b.SubscriptionID })
}

// candidates returns the classic and the topic-based subscriptions the
// change may match: those of every topic version whose triggers the change
// fires (each evaluated once, outside the registry's lock, as it may read
// the previous version), taken with the classic ones in one read of the
// registry. The focus's search keys are extracted only when some
// subscription needs them.
func (mt *matcher) candidates(c fhirstore.Change, ch *loaded) (classic, topical []*entry) {
	var fired map[*topics.Topic]bool
	for {
		hasClassic, versions := mt.reg.watching(c.Type)
		if !hasClassic && len(versions) == 0 {
			return nil, nil // no subscription watches the type
		}
		if fired == nil && len(versions) > 0 {
			fired = make(map[*topics.Topic]bool, len(versions))
		}
		need := hasClassic && ch.cur != nil
		for _, t := range versions {
			f, known := fired[t]
			if !known {
				f = mt.triggered(t, c, ch)
				fired[t] = f
			}
			need = need || f
		}
		var keys []search.Key
		if need {
			keys = ch.focusKeys()
		}
		classic, topical, ok := mt.reg.candidates(c.Type, keys, need, ch.cur != nil, fired)
		if ok {
			return classic, topical
		}
	}
}

// triggered reports whether the change fires a resource trigger of topic
// version t.
func (mt *matcher) triggered(t *topics.Topic, c fhirstore.Change, ch *loaded) bool {
	prev, err := ch.previous()
	if err != nil {
		mt.log.Warn("previous version unreadable; matching as a create", "type", c.Type, "id", c.ID, "err", err)
	}
	fired, err := t.Triggered(topics.Change{Interaction: string(c.Interaction), ResourceType: c.Type,
		Previous: prev, Current: ch.cur})
	if err != nil {
		mt.log.Warn("topic trigger failed", "topic", t.URL, "err", err)
	}
	return fired
}
