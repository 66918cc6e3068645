package subscriptions

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/fhirsub/fhirsub/conformance/search"
	"github.com/fhirsub/fhirsub/fhirstore"
	"github.com/fhirsub/fhirsub/topics"
)

// matchLoop consumes the change feed from cursor: for each change it finds
// the subscriptions it triggers, records their events together with the
// cursor, and wakes the deliverers. A change that triggers nothing does
// not write the cursor on its own: the cursor moves with the next recorded
// change, or is saved after CursorEvery or BatchSize such changes, and as
// the loop stops — so that a change nobody is interested in costs no write
// transaction. After a crash the changes after the saved cursor are
// processed again, which recording makes idempotent.
func (m *Manager) matchLoop(ctx context.Context, cursor int64) {
	retry := time.Duration(0)
	var failing int64 // the seq that failed last, and how many times in a row
	attempts := 0
	lazy := lazyCursor{m: m, last: time.Now()}
	defer lazy.save(context.WithoutCancel(ctx))
	for ctx.Err() == nil {
		changes, err := m.store.Changes(ctx, cursor, m.cfg.BatchSize)
		if err != nil {
			retry = m.pause(ctx, retry, "read change feed", err)
			continue
		}
		if len(changes) == 0 {
			m.lag.matching(time.Time{}) // caught up
			lazy.maybeSave(ctx)
			wctx, cancel := context.WithTimeout(ctx, lazy.wait(m.cfg.PollInterval))
			err := m.store.Wait(wctx, cursor)
			cancel()
			if err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				retry = m.pause(ctx, retry, "wait for changes", err)
			}
			continue
		}
		for _, c := range changes {
			m.lag.matching(c.Time)
			saved, err := m.process(ctx, c, m.cfg.Cursor, true)
			if err != nil {
				if ctx.Err() != nil {
					break
				}
				if failing != c.Seq {
					failing, attempts = c.Seq, 0
				}
				attempts++
				// Set aside only a change that keeps failing while the
				// store answers: an outage must not skip changes.
				if attempts >= m.cfg.MaxChangeAttempts && m.store.Ping(ctx) == nil {
					serr := m.skip(ctx, c, attempts, err)
					if serr == nil {
						cursor, retry = c.Seq, 0
						lazy.saved()
						continue
					}
					err = serr
				}
				lazy.save(ctx)
				retry = m.pause(ctx, retry, "process change", err)
				break
			}
			cursor, retry = c.Seq, 0
			if saved {
				lazy.saved()
			} else {
				lazy.add(c)
			}
		}
		lazy.maybeSave(ctx)
	}
}

// lazyCursor is the matcher's cursor past changes that recorded nothing.
type lazyCursor struct {
	m       *Manager
	pending fhirstore.Change // the last such change (zero Seq: none)
	n       int              // how many since the stored cursor
	last    time.Time        // when the cursor was last stored
}

func (l *lazyCursor) add(c fhirstore.Change) { l.pending, l.n = c, l.n+1 }

// saved notes that a Record stored the cursor.
func (l *lazyCursor) saved() { l.pending, l.n, l.last = fhirstore.Change{}, 0, time.Now() }

// maybeSave stores the cursor when CursorEvery has passed or BatchSize
// changes wait.
func (l *lazyCursor) maybeSave(ctx context.Context) {
	if l.n > 0 && (l.n >= l.m.cfg.BatchSize || time.Since(l.last) >= l.m.cfg.CursorEvery) {
		l.save(ctx)
	}
}

// wait bounds an idle wait so that a pending cursor is stored in time.
func (l *lazyCursor) wait(poll time.Duration) time.Duration {
	if l.n == 0 {
		return poll
	}
	return max(min(poll, l.m.cfg.CursorEvery-time.Since(l.last)), time.Millisecond)
}

// save stores the pending cursor; a failure is logged and the next save
// covers it (until then a restart processes more changes again).
func (l *lazyCursor) save(ctx context.Context) {
	if l.n == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c := l.pending
	if _, err := l.m.events.Record(ctx, l.m.cfg.Cursor, c.Seq, c.Time, nil); err != nil {
		l.m.log.Warn("matcher: save cursor", "seq", c.Seq, "err", err)
		return
	}
	l.saved()
}

// pause logs a matcher failure and sleeps a growing interval (capped at
// 5 s) before the next try.
func (m *Manager) pause(ctx context.Context, last time.Duration, what string, err error) time.Duration {
	d := min(max(2*last, 50*time.Millisecond), 5*time.Second)
	m.log.Error("matcher: "+what, "err", err, "retry_in", d)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
	return d
}

// process handles one change: subscription bookkeeping, matching,
// recording under cursor (idempotent, atomic with the cursor) and
// dispatch. With lazy, a change that matches nothing and is no
// Subscription or SubscriptionTopic write is not recorded: saved is false
// and the caller saves the cursor later. Subscription and topic changes
// always move the cursor, so that a restart never processes again, for a
// subscription it loads as new, a change from before that subscription.
func (m *Manager) process(ctx context.Context, c fhirstore.Change, cursor string, lazy bool) (saved bool, err error) {
	ch, err := m.load(ctx, c)
	if err != nil {
		return false, err
	}
	for _, t := range m.cfg.Taps {
		if err := t.Change(ctx, c, ch); err != nil {
			return false, err
		}
	}
	switch c.Type {
	case "Subscription":
		m.feedSubscription(ctx, c, ch)
	case "SubscriptionTopic":
		if ch.res != nil {
			if err := m.committedTopic(ch.res); err != nil {
				m.log.Warn("stored SubscriptionTopic ignored", "id", c.ID, "err", err)
			}
		}
	}
	matches := m.match(c, ch)
	if lazy && len(matches) == 0 && c.Type != "Subscription" && c.Type != "SubscriptionTopic" {
		m.stats.recorded(0)
		return false, nil
	}
	evs, err := m.events.Record(ctx, cursor, c.Seq, c.Time, matches)
	if err != nil {
		return false, err
	}
	m.stats.recorded(len(evs))
	m.dispatch(ctx, evs)
	return true, nil
}

// loaded is a change with its versions, each read and decoded at most
// once, on demand, for the matcher and the taps (it implements Versions).
type loaded struct {
	m       *Manager
	ctx     context.Context
	c       fhirstore.Change
	res     *fhirstore.Resource // the new version (a tombstone for delete), once read
	cur     map[string]any      // nil for delete
	resErr  error               // reading or decoding the new version failed
	resOK   bool                // res, cur and resErr are set
	prev    map[string]any
	prevErr error
	prevOK  bool
	keys    []search.Key
	keysOK  bool
	seen    map[string]bool // visible decisions by encoded access
}

// load makes the change's versions available, and reads the new version
// at once unless nothing the matcher holds can be interested in the type.
func (m *Manager) load(ctx context.Context, c fhirstore.Change) (*loaded, error) {
	ch := &loaded{m: m, ctx: ctx, c: c}
	if !m.reg.interested(c.Type) && c.Type != "Subscription" && c.Type != "SubscriptionTopic" {
		return ch, nil
	}
	if _, err := ch.Current(); err != nil {
		return nil, err
	}
	return ch, nil
}

// Resource returns the new version (a tombstone for a delete).
func (ch *loaded) Resource() (*fhirstore.Resource, error) {
	if ch.resOK {
		return ch.res, ch.resErr
	}
	ch.resOK = true
	res, err := ch.m.store.VRead(ch.ctx, ch.c.Type, ch.c.ID, ch.c.VersionID)
	if err != nil {
		ch.resErr = err
		return nil, err
	}
	ch.res = res
	if !res.Deleted {
		ch.cur, ch.resErr = fhirstore.Decode(res.Body)
	}
	return ch.res, ch.resErr
}

// Current returns the new version decoded (nil for a delete).
func (ch *loaded) Current() (map[string]any, error) {
	if _, err := ch.Resource(); err != nil {
		return nil, err
	}
	return ch.cur, nil
}

// Previous returns the version the change replaced (nil for none).
func (ch *loaded) Previous() (map[string]any, error) {
	return ch.previous()
}

// previous returns the version the change replaced (nil for none).
func (ch *loaded) previous() (map[string]any, error) {
	if ch.prevOK {
		return ch.prev, ch.prevErr
	}
	ch.prevOK = true
	if ch.c.PreviousVersionID == "" {
		return nil, nil
	}
	res, err := ch.m.store.VRead(ch.ctx, ch.c.Type, ch.c.ID, ch.c.PreviousVersionID)
	if err != nil {
		ch.prevErr = err
		return nil, err
	}
	if !res.Deleted {
		ch.prev, ch.prevErr = fhirstore.Decode(res.Body)
	}
	return ch.prev, ch.prevErr
}

// focus is the resource subscriptions filter on: the new version, or the
// previous one for a delete.
func (ch *loaded) focus() map[string]any {
	if ch.cur != nil {
		return ch.cur
	}
	p, _ := ch.previous()
	return p
}

// focusKeys returns the exact search keys of the focus, computed once.
func (ch *loaded) focusKeys() []search.Key {
	if !ch.keysOK {
		ch.keysOK = true
		if f := ch.focus(); f != nil {
			ch.keys, _ = search.Keys(f)
		}
	}
	return ch.keys
}

// feedSubscription applies a Subscription change seen in the feed (covers
// the writes of other processes and the server's own status changes).
func (m *Manager) feedSubscription(ctx context.Context, c fhirstore.Change, ch *loaded) {
	if c.Interaction == fhirstore.InteractionDelete {
		if m.reg.drop(c.ID, c.VersionID) {
			if err := m.events.DropSubscription(ctx, c.ID); err != nil {
				m.log.Warn("drop subscription events", "subscription", c.ID, "err", err)
			}
		}
		return
	}
	if ch.cur == nil {
		return
	}
	s, err := m.parser(false).parse(ch.cur, ch.res)
	if err != nil {
		m.log.Warn("stored Subscription ignored", "id", c.ID, "err", err)
		return
	}
	if m.reg.put(s, c.Seq) {
		m.queue.Push(s.ID)
	}
}

// match returns the subscriptions the change triggers, sorted by id.
func (m *Manager) match(c fhirstore.Change, ch *loaded) []fhirstore.Match {
	if ch.res == nil {
		return nil
	}
	var out []fhirstore.Match
	add := func(e *entry, topic string) {
		out = append(out, fhirstore.Match{SubscriptionID: e.sub.ID, Topic: topic, Type: c.Type, ID: c.ID,
			VersionID: c.VersionID, Interaction: c.Interaction})
	}
	now := m.cfg.Now()
	live := func(e *entry) bool {
		return c.Seq > e.since && e.sub.Status != StatusOff && (e.sub.End.IsZero() || now.Before(e.sub.End))
	}

	groups := m.reg.topicGroups(c.Type)

	// Classic criteria: R4 applies them to the new version of creates and
	// updates; deletes are not notified.
	if ch.cur != nil && m.reg.hasClassic(c.Type) {
		for _, e := range m.reg.classicCandidates(c.Type, ch.focusKeys()) {
			if !live(e) {
				continue
			}
			ok, err := m.matchCriteria(ch.ctx, e.sub, ch.cur)
			if err != nil {
				m.log.Warn("subscription criteria failed", "subscription", e.sub.ID, "err", err)
				continue
			}
			if ok && ch.visible(e.sub) {
				add(e, "")
			}
		}
	}

	for _, g := range groups {
		prev, err := ch.previous()
		if err != nil {
			m.log.Warn("previous version unreadable; matching as a create", "type", c.Type, "id", c.ID, "err", err)
		}
		fired, err := g.topic.Triggered(topics.Change{Interaction: string(c.Interaction), ResourceType: c.Type,
			Previous: prev, Current: ch.cur})
		if err != nil {
			m.log.Warn("topic trigger failed", "topic", g.topic.URL, "err", err)
		}
		if !fired {
			continue
		}
		focus := ch.focus()
		for _, e := range m.reg.topicCandidates(g, c.Type, ch.focusKeys()) {
			if !live(e) {
				continue
			}
			ok, err := topics.MatchAll(e.sub.Filters, focus)
			if err != nil {
				m.log.Warn("subscription filter failed", "subscription", e.sub.ID, "err", err)
				continue
			}
			if ok && ch.visible(e.sub) {
				add(e, e.sub.TopicURL)
			}
		}
	}
	slices.SortFunc(out, func(a, b fhirstore.Match) int { return strings.Compare(a.SubscriptionID, b.SubscriptionID) })
	return slices.CompactFunc(out, func(a, b fhirstore.Match) bool { return a.SubscriptionID == b.SubscriptionID })
}

// dispatch hands recorded events to the rest-hook queue and the listeners.
func (m *Manager) dispatch(ctx context.Context, evs []fhirstore.Event) {
	for i := 0; i < len(evs); {
		j := i + 1
		for j < len(evs) && evs[j].SubscriptionID == evs[i].SubscriptionID {
			j++
		}
		id := evs[i].SubscriptionID
		group := evs[i:j]
		i = j
		s, ok := m.Subscription(id)
		if !ok {
			continue
		}
		if s.ChannelType == ChannelRestHook {
			if m.owns(id) {
				last := group[len(group)-1]
				m.lag.recorded(id, group[0].Time, last.Number, last.Time)
			}
			m.queue.Push(id)
			continue
		}
		m.notifyListeners(s, group)
		// events of channels without acknowledgement are delivered once
		// handed over; mark them so that retention can prune
		if last := group[len(group)-1].Number; last%64 == 0 {
			if err := m.events.SaveDelivery(ctx, fhirstore.SubscriptionState{SubscriptionID: id, Delivered: last}); err == nil {
				_ = m.events.Prune(ctx, id, m.cfg.Retention)
			}
		}
	}
}
