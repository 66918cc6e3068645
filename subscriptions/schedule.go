package subscriptions

import (
	"context"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/fhirsub/fhirsub/fhirstore"
)

// scheduleLoop wakes the deliverers for due retries and heartbeats and
// for subscriptions whose end has passed. It looks every HeartbeatTick,
// and also when the earliest retry is due (a retry set meanwhile wakes it
// to recompute), so that a retry is not late by up to a tick.
func (m *Manager) scheduleLoop(ctx context.Context) {
	t := time.NewTimer(m.cfg.HeartbeatTick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-m.sched.kick:
			if !t.Stop() {
				select {
				case <-t.C:
				default:
				}
			}
		}
		now := m.cfg.Now()
		m.queue.migrate(time.Now())
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
		wait := m.cfg.HeartbeatTick
		if first := m.sched.earliest(); !first.IsZero() {
			wait = min(wait, max(first.Sub(m.cfg.Now()), time.Millisecond))
		}
		m.sched.plan(m.cfg.Now().Add(wait))
		t.Reset(wait)
	}
}

// schedule keeps the in-memory timing of every subscription: when its
// next retry is due and when it last communicated (for heartbeats).
type schedule struct {
	mu   sync.Mutex
	next map[string]time.Time // retry due
	comm map[string]time.Time // last successful communication or activation
	kick chan struct{}        // a retry earlier than wake was set: the schedule loop recomputes its wait
	wake time.Time            // when the schedule loop looks next
}

func newSchedule() *schedule {
	return &schedule{next: map[string]time.Time{}, comm: map[string]time.Time{}, kick: make(chan struct{}, 1)}
}

// plan records when the schedule loop looks next.
func (s *schedule) plan(t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.wake = t
}

// earliest returns the earliest retry due (zero when none).
func (s *schedule) earliest() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	var first time.Time
	for _, t := range s.next {
		if first.IsZero() || t.Before(first) {
			first = t
		}
	}
	return first
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
		return
	}
	s.next[id] = t
	if !s.wake.IsZero() && !t.Before(s.wake) {
		return // the loop looks by then anyway
	}
	select {
	case s.kick <- struct{}{}:
	default:
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
