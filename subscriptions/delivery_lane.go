package subscriptions

import (
	"context"
	"sync"

	"github.com/fhirsub/fhirsub/fhirstore"
)

// readAhead is how many undelivered events a deliverer reads at once and
// keeps in memory: with max-count 1, one read of the event log serves up
// to readAhead deliveries.
const readAhead = 64

// inboxMax bounds the events handed to a lane (offer) and not yet taken
// by its worker; past it, offers are dropped and the worker reads the
// event log instead.
const inboxMax = 4 * readAhead

// pruneEvery is how many delivered events go by between two prunes of a
// subscription's event log.
const pruneEvery = 64

// lane is what the deliverer of one rest-hook subscription keeps in memory
// between deliveries, so that a delivery does not re-read the store: the
// delivery state as last saved and the undelivered events read ahead.
// Only the subscription's worker (the queue allows one at a time) uses it.
//
// The store stays the truth: a lane is dropped when the subscription
// disappears, when its version changes (a status change, a client update,
// a delete and re-create under the same id all make a new version) and
// when a save fails; the next delivery then reads the state again.
//
// The matcher hands each event it recorded to the subscription's lane
// (offer), so that a worker finds the event there instead of reading the
// event log back: the inbox, the one part of a lane shared with another
// goroutine, behind mu. An event taken from the inbox joins ahead only
// if it is the next one; a gap (an offer dropped, or an event recorded
// elsewhere) is filled by a read, as without the inbox.
type lane struct {
	st    fhirstore.SubscriptionState // EventCount is not kept up to date
	ahead []fhirstore.Event           // numbered st.Delivered+1, st.Delivered+2, …
	// more: the last read of the event log filled its limit, so the log
	// may hold events past ahead that no offer will bring.
	more bool
	// gap: the log holds events ahead does not (take met an offered
	// event past the next one, or an offer was dropped: missed); the
	// next read clears it.
	gap bool
	// fresh: st was just read, EventCount included; the attempt that
	// made the lane takes it (deliver).
	fresh bool
	// synced: every event the log holds past st.Delivered is in ahead,
	// or in the inbox: the lane was made before its subscription could
	// match anything (newLane), and no offer has gone astray since (a
	// gap ends it for good). An empty synced lane has nothing to read.
	synced bool

	mu sync.Mutex
	// version is the subscription version the lane was filled under;
	// written by the worker under mu (renew), read by offers under mu.
	version string
	inbox   []fhirstore.Event // recorded events offered, in number order
	// missed: an offer was dropped (inbox full, or made under another
	// version, as around the deliverer's own status writes). Its events
	// are in the log only, and the wake-up that came with it may be the
	// run that is taking the inbox now: take turns it into gap, so that
	// the run reads the log rather than end with them unsent.
	missed bool
}

// offer hands evs, recorded events of the lane's subscription at version
// in number order, to the lane's worker; dropped when the inbox is full
// or the lane is of another version, which the lane remembers (missed).
func (ln *lane) offer(version string, evs []fhirstore.Event) {
	ln.mu.Lock()
	defer ln.mu.Unlock()
	if ln.version == version && len(ln.inbox)+len(evs) <= inboxMax {
		ln.inbox = append(ln.inbox, evs...)
	} else {
		ln.missed = true
	}
}

// renew moves the lane from version from to version to (lanes.renew).
func (ln *lane) renew(from, to string) {
	ln.mu.Lock()
	defer ln.mu.Unlock()
	if ln.version == from {
		ln.version = to
	}
}

// is reports whether the lane is of the subscription's version.
func (ln *lane) is(version string) bool {
	ln.mu.Lock()
	defer ln.mu.Unlock()
	return ln.version == version
}

// take moves the offered events that continue ahead (the next numbers, in
// order) into ahead, and forgets the rest: those already known and those
// after a gap, which a read of the event log finds. A dropped offer is a
// gap too.
func (ln *lane) take() {
	ln.mu.Lock()
	in, missed := ln.inbox, ln.missed
	ln.inbox, ln.missed = nil, false
	ln.mu.Unlock()
	if missed {
		ln.gap = true
	}
	next := ln.st.Delivered + 1
	if n := len(ln.ahead); n > 0 {
		next = ln.ahead[n-1].Number + 1
	}
	for _, ev := range in {
		if ev.Number < next {
			continue
		}
		if ev.Number > next {
			ln.gap = true
			break
		}
		ln.ahead = append(ln.ahead, ev)
		next++
	}
	ln.synced = ln.synced && !ln.gap
}

// last returns the number of the last event a synced lane knows of.
func (ln *lane) last() int64 {
	if n := len(ln.ahead); n > 0 {
		return ln.ahead[n-1].Number
	}
	return ln.st.Delivered
}

// lanes holds the lanes of the subscriptions that have one.
type lanes struct {
	mu sync.Mutex
	m  map[string]*lane
}

func newLanes() *lanes { return &lanes{m: map[string]*lane{}} }

// newLane returns the lane of a subscription created just now (version
// 1 of a new id), before the matcher knows it: no delivery state and no
// event yet, so its first deliveries need not read either from the store
// (subs at 20,000: the two reads were a tenth of the server's CPU).
func newLane(s *Subscription) *lane {
	return &lane{version: s.VersionID, st: fhirstore.SubscriptionState{SubscriptionID: s.ID}, synced: true}
}

// add puts ln as id's lane unless id has one.
func (l *lanes) add(id string, ln *lane) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.m[id]; !ok {
		l.m[id] = ln
	}
}

func (l *lanes) get(id string) *lane {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.m[id]
}

func (l *lanes) put(id string, ln *lane) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.m[id] = ln
}

// offer hands recorded events of subscription id at version to its lane,
// if it has one filled under that version.
func (l *lanes) offer(id, version string, evs []fhirstore.Event) {
	if ln := l.get(id); ln != nil {
		ln.offer(version, evs)
	}
}

// renew carries subscription id's lane from version from to version to:
// the deliverer wrote version to itself (a status change), right after
// saving the lane's state, so the lane is still true.
func (l *lanes) renew(id, from, to string) {
	if ln := l.get(id); ln != nil {
		ln.renew(from, to)
	}
}

// count returns the number of lanes held.
func (l *lanes) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}

// drop forgets id's lane: its next delivery reads the state again.
func (l *lanes) drop(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.m, id)
}

// lane returns the lane of s: the cached one if it was filled under s's
// current version, else a new one with the delivery state read from the
// store.
func (d *deliverer) lane(ctx context.Context, s *Subscription) (*lane, error) {
	if ln := d.lanes.get(s.ID); ln != nil && ln.is(s.VersionID) {
		return ln, nil
	}
	st, err := d.buf.state(ctx, s.ID)
	if err != nil {
		d.lanes.drop(s.ID)
		return nil, err
	}
	ln := &lane{version: s.VersionID, st: st, fresh: true}
	d.lanes.put(s.ID, ln)
	return ln, nil
}

// pending returns the next at most batch undelivered events of the lane's
// subscription. It reads ahead from the event log when the lane holds
// none, or fewer than batch and knows of a gap; otherwise the events the
// matcher offered are all there is, and a notification takes what the
// lane holds rather than read the log back for more (with a batch above
// 1, reading whenever fewer than batch were held read it back at every
// delivery: fhirsub-load fanout lost a quarter of its rate to it).
func (d *deliverer) pending(ctx context.Context, id string, ln *lane, batch int) ([]fhirstore.Event, error) {
	ln.take()
	if (len(ln.ahead) == 0 && !ln.synced) || (ln.gap && len(ln.ahead) < batch) {
		limit := max(batch, readAhead)
		evs, err := d.events.Events(ctx, id, ln.st.Delivered+1, 0, limit)
		if err != nil {
			return nil, err
		}
		ln.ahead, ln.more, ln.gap = evs, len(evs) == limit, false
	}
	return ln.ahead[:min(batch, len(ln.ahead))], nil
}

// pendingWork reports whether the lane's subscription may have events
// left that no dispatch will announce: some read ahead, more in the event
// log than the last read took, or a gap among the offers.
func (ln *lane) pendingWork() bool { return len(ln.ahead) > 0 || ln.more || ln.gap }

// delivered moves the lane past the events up to number last (saved).
func (ln *lane) delivered(last int64) {
	i := 0
	for i < len(ln.ahead) && ln.ahead[i].Number <= last {
		i++
	}
	ln.ahead = ln.ahead[i:]
	if len(ln.ahead) == 0 {
		ln.ahead = nil // let the array go
	}
}
