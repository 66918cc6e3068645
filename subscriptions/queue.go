package subscriptions

import (
	"context"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/fhirsub/fhirsub/fhirstore"
)

// queue holds the subscriptions that have delivery work, each at most
// once, and guarantees one worker per subscription at a time: a push of
// a subscription being worked on is remembered and re-queued when the
// worker is done.
type queue struct {
	mu      sync.Mutex
	pending []string
	queued  map[string]bool
	busy    map[string]bool
	again   map[string]bool
	wake    chan struct{}

	// lanes is the in-memory delivery work of each subscription, used by
	// the one worker the queue lets work on it.
	lanes *lanes
}

func newQueue() *queue {
	return &queue{queued: map[string]bool{}, busy: map[string]bool{}, again: map[string]bool{},
		wake: make(chan struct{}, 1), lanes: newLanes()}
}

func (q *queue) push(id string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.pushLocked(id)
}

func (q *queue) pushLocked(id string) {
	switch {
	case q.busy[id]:
		q.again[id] = true
		return
	case q.queued[id]:
		return
	}
	q.queued[id] = true
	q.pending = append(q.pending, id)
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// pop waits for a subscription to work on and marks it busy; ok is false
// when ctx ends.
func (q *queue) pop(ctx context.Context) (string, bool) {
	for {
		q.mu.Lock()
		if len(q.pending) > 0 {
			id := q.pending[0]
			q.pending[0] = ""
			q.pending = q.pending[1:]
			delete(q.queued, id)
			q.busy[id] = true
			more := len(q.pending) > 0
			q.mu.Unlock()
			if more {
				select {
				case q.wake <- struct{}{}:
				default:
				}
			}
			return id, true
		}
		q.mu.Unlock()
		select {
		case <-ctx.Done():
			return "", false
		case <-q.wake:
		}
	}
}

// done releases a subscription; it is re-queued if pushed meanwhile.
func (q *queue) done(id string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.busy, id)
	if q.again[id] {
		delete(q.again, id)
		q.pushLocked(id)
	}
}

// busyWhere reports whether a worker is on a subscription for which
// pred holds.
func (q *queue) busyWhere(pred func(id string) bool) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	for id := range q.busy {
		if pred(id) {
			return true
		}
	}
	return false
}

// scheduleLoop wakes the deliverers for due retries and heartbeats and
// for subscriptions whose end has passed.
func (m *Manager) scheduleLoop(ctx context.Context) {
	t := time.NewTicker(m.cfg.HeartbeatTick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := m.cfg.Now()
		m.mu.RLock()
		var due []string
		for id, s := range m.subs {
			if s.Status == StatusOff || !m.owns(id) {
				continue
			}
			if !s.End.IsZero() && !now.Before(s.End) {
				due = append(due, id)
				continue
			}
			if s.ChannelType != ChannelRestHook {
				continue
			}
			next, comm := m.sched.get(id)
			switch {
			case !next.IsZero() && !now.Before(next):
				due = append(due, id)
			case s.Heartbeat > 0 && (s.Status == StatusActive || s.Status == StatusError) && now.Sub(comm) >= s.Heartbeat:
				due = append(due, id)
			}
		}
		m.mu.RUnlock()
		for _, id := range due {
			m.queue.push(id)
		}
	}
}

// schedule keeps the in-memory timing of every subscription: when its
// next retry is due and when it last communicated (for heartbeats).
type schedule struct {
	mu   sync.Mutex
	next map[string]time.Time // retry due
	comm map[string]time.Time // last successful communication or activation
}

func newSchedule() *schedule {
	return &schedule{next: map[string]time.Time{}, comm: map[string]time.Time{}}
}

// restore seeds the timing from a persisted delivery state.
func (s *schedule) restore(st fhirstore.SubscriptionState, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !st.NextAttempt.IsZero() {
		s.next[st.SubscriptionID] = st.NextAttempt
	}
	if !st.LastSuccess.IsZero() {
		s.comm[st.SubscriptionID] = st.LastSuccess
	}
}

// touch records a communication (or a start) at t.
func (s *schedule) touch(id string, t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t.After(s.comm[id]) {
		s.comm[id] = t
	}
}

func (s *schedule) setNext(id string, t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t.IsZero() {
		delete(s.next, id)
	} else {
		s.next[id] = t
	}
}

func (s *schedule) get(id string) (next, comm time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.next[id], s.comm[id]
}

func (s *schedule) forget(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.next, id)
	delete(s.comm, id)
}

// backoff is the delay before retry number failures (1 = first retry):
// base·2^(failures-1), capped at max, with the attempt count capped before
// the power is computed, and "equal jitter" (half fixed, half random).
func backoff(failures int, base, maxDelay time.Duration) time.Duration {
	n := min(max(failures-1, 0), 30)
	d := float64(base) * math.Pow(2, float64(n))
	if d > float64(maxDelay) {
		d = float64(maxDelay)
	}
	half := time.Duration(d / 2)
	return half + rand.N(half+1)
}
