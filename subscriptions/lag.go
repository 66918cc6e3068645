package subscriptions

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fhirsub/fhirsub/fhirstore"
)

// Lag is how far notifications are behind the writes, per channel: the
// age of the oldest thing committed and not yet handed on. Zero means
// caught up.
type Lag struct {
	// Matcher is the age of the oldest committed change the matcher has
	// not finished processing (now minus its commit time). Websocket
	// events are handed to the bound sockets as the matcher records them,
	// so this is also the websocket channels' lag.
	Matcher time.Duration
	// RestHook is the age of the oldest recorded, undelivered event of a
	// rest-hook subscription this node delivers whose delivery is the
	// server's to do. A subscription whose receiver is the cause does not
	// count: its last attempt failed (waiting in backoff, or in status
	// error), or its receiver is slow in the delivery queue's sense (an
	// attempt running, or the last one having taken, longer than
	// Config.SlowAfter; such receivers already get their own worker pool).
	// Their backlog is theirs alone, shown by their status and $status,
	// and must not hold back everybody's writes; when a failing receiver
	// recovers, its backlog counts from the recovery, not from the commit
	// of its oldest event. What counts is work the
	// server is late with: events waiting for a worker, receivers that
	// answer in time but not fast enough for the rate of events.
	RestHook time.Duration
}

// Max returns the larger of the two lags and the channel it is of
// ("matcher" or "rest-hook").
func (l Lag) Max() (time.Duration, string) {
	if l.RestHook > l.Matcher {
		return l.RestHook, ChannelRestHook
	}
	return l.Matcher, "matcher"
}

// lagEvery is how long a computed rest-hook lag is reused: the gate asks
// on every write, the scan of the backlogs runs at most this often.
const lagEvery = 100 * time.Millisecond

// slowBeforeSort is how many slow receivers the search for the oldest
// backlog skips by linear passes before it sorts the rest instead.
const slowBeforeSort = 4

// lagTracker keeps what the lag is computed from, updated by the loops
// that already run: the matcher notes the change it works on, the
// dispatcher and the deliverers the oldest undelivered event of each
// rest-hook subscription with a backlog. It is safe for concurrent use.
type lagTracker struct {
	behind atomic.Int64 // commit time (Unix ns) of the change the matcher works on; 0: caught up

	mu       sync.Mutex
	backlogs map[string]*backlog  // rest-hook subscriptions with undelivered events
	failed   map[string]bool      // rest-hook subscriptions whose last attempt failed: not counted
	stalled  func(id string) bool // the receiver of id is slow: not counted (nil: none is)
	now      func() time.Time     // the clock of the failure marks (time.Now)
	oldest   time.Time            // the oldest counted backlog found at cachedAt (zero: none)
	cachedAt time.Time
}

// backlog is the undelivered work of one rest-hook subscription.
type backlog struct {
	oldest   time.Time // commit time of the oldest undelivered event (or a lower bound of its age)
	newest   int64     // number of the newest event recorded
	newestAt time.Time // its commit time
	due      time.Time // when the receiver last recovered from a failure: the backlog is due since
}

// since is when the oldest undelivered event became the server's to
// deliver: its commit, or the receiver's recovery if later (the time the
// receiver was failing is its own, not the server's lateness).
func (b *backlog) since() time.Time {
	if b.due.After(b.oldest) {
		return b.due
	}
	return b.oldest
}

func newLagTracker() *lagTracker {
	return &lagTracker{backlogs: map[string]*backlog{}, failed: map[string]bool{}, now: time.Now}
}

// matching notes that the matcher works on a change committed at t; a zero
// t says it is caught up.
func (l *lagTracker) matching(t time.Time) {
	if t.IsZero() {
		l.behind.Store(0)
		return
	}
	l.behind.Store(t.UnixNano())
}

// recorded notes events first..last (numbers; committed at firstAt and
// lastAt) recorded for subscription id.
func (l *lagTracker) recorded(id string, firstAt time.Time, last int64, lastAt time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.backlogs[id]
	if b == nil {
		b = &backlog{oldest: firstAt}
		l.backlogs[id] = b
	}
	if last > b.newest {
		b.newest, b.newestAt = last, lastAt
	}
}

// attempt notes what a deliverer found undelivered after event number
// delivered: next, oldest first (none: caught up, unless an event was
// recorded since the deliverer read).
func (l *lagTracker) attempt(id string, delivered int64, next []fhirstore.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.backlogs[id]
	switch {
	case len(next) > 0 && b == nil:
		last := next[len(next)-1]
		l.backlogs[id] = &backlog{oldest: next[0].Time, newest: last.Number, newestAt: last.Time}
	case len(next) > 0:
		b.oldest = next[0].Time
	case b != nil && b.newest <= delivered:
		delete(l.backlogs, id)
	}
}

// delivered notes that the events up to number last were delivered and
// that next (zero: unknown) is the commit time of the following one.
func (l *lagTracker) delivered(id string, last int64, next time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recoveredLocked(id)
	b := l.backlogs[id]
	if b == nil {
		return
	}
	switch {
	case !next.IsZero():
		b.oldest = next
	case b.newest > last:
		// more was recorded than the deliverer read ahead: the newest's
		// age is a lower bound until the next attempt reads the oldest
		b.oldest = b.newestAt
	default:
		delete(l.backlogs, id)
	}
}

// failing notes whether the last attempt of id failed (kept apart from
// the backlogs: it holds for the events recorded later too).
func (l *lagTracker) failing(id string, failed bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if failed {
		l.failed[id] = true
	} else {
		l.recoveredLocked(id)
	}
}

// recoveredLocked clears the failure mark of id; a backlog that waited
// for the receiver is due from now on. l.mu must be held.
func (l *lagTracker) recoveredLocked(id string) {
	if !l.failed[id] {
		return
	}
	delete(l.failed, id)
	if b := l.backlogs[id]; b != nil {
		b.due = l.now()
	}
}

// forget drops the backlog of id (gone, off, not this node's).
func (l *lagTracker) forget(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.backlogs, id)
	delete(l.failed, id)
}

// lag returns the lag at now; which backlog is the oldest is found again
// at most every lagEvery (its age is always computed at now).
func (l *lagTracker) lag(now time.Time) Lag {
	var out Lag
	if b := l.behind.Load(); b != 0 {
		out.Matcher = max(now.Sub(time.Unix(0, b)), 0)
	}
	l.mu.Lock()
	if !l.cachedAt.IsZero() && now.Sub(l.cachedAt) < lagEvery && !now.Before(l.cachedAt) {
		oldest := l.oldest
		l.mu.Unlock()
		if !oldest.IsZero() {
			out.RestHook = max(now.Sub(oldest), 0)
		}
		return out
	}
	type cand struct {
		id     string
		oldest time.Time
	}
	cands := make([]cand, 0, len(l.backlogs))
	for id, b := range l.backlogs {
		if !l.failed[id] {
			cands = append(cands, cand{id, b.since()})
		}
	}
	l.mu.Unlock()
	// the oldest backlog whose receiver is not slow (asked outside l.mu:
	// the queue has its own lock). A linear pass finds it unless slow
	// receivers come first: sorting every backlog each time was 2% of
	// the server's CPU with 10,000 subscriptions behind.
	var oldest time.Time
	for tries := 0; len(cands) > 0; tries++ {
		if tries == slowBeforeSort {
			slices.SortFunc(cands, func(a, b cand) int { return b.oldest.Compare(a.oldest) })
		}
		i := len(cands) - 1 // sorted: the oldest is last
		if tries < slowBeforeSort {
			for j, c := range cands {
				if c.oldest.Before(cands[i].oldest) {
					i = j
				}
			}
		}
		if l.stalled == nil || !l.stalled(cands[i].id) {
			oldest = cands[i].oldest
			break
		}
		// drop it, keeping the order of the rest (sorted once tries
		// reaches slowBeforeSort)
		cands = slices.Delete(cands, i, i+1)
	}
	l.mu.Lock()
	l.oldest, l.cachedAt = oldest, now
	l.mu.Unlock()
	if !oldest.IsZero() {
		out.RestHook = max(now.Sub(oldest), 0)
	}
	return out
}

// Lag returns how far notifications are behind the writes (see Lag). It
// is cheap enough to call on every write: the rest-hook part is a scan of
// the subscriptions with undelivered events at most every 100 ms.
func (m *Manager) Lag() Lag { return m.lag.lag(time.Now()) }
