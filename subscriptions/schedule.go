package subscriptions

import (
	"container/heap"
	"context"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/fhirsub/fhirsub/fhirstore"
)

// scheduleLoop wakes the deliverers for due retries and heartbeats and
// for subscriptions whose end has passed. The due times live in a heap
// (schedule), so a look costs the number of subscriptions due, not the
// number known. It looks every HeartbeatTick (the queue's slow-attempt
// check runs then too) and when the earliest timer is due; a timer set
// earlier than the next look wakes it to recompute.
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
		t.Reset(m.tick())
	}
}

// tick is one look of the schedule loop: it queues the subscriptions
// whose timer is due and returns how long to wait until the next look.
func (m *Manager) tick() time.Duration {
	now := m.cfg.Now()
	m.queue.migrate(time.Now())
	for _, id := range m.sched.due(now, m.cfg.HeartbeatTick, m.owns) {
		m.queue.push(id)
	}
	wait := m.cfg.HeartbeatTick
	if first := m.sched.earliest(); !first.IsZero() {
		wait = min(wait, max(first.Sub(m.cfg.Now()), time.Millisecond))
	}
	m.sched.plan(m.cfg.Now().Add(wait))
	return wait
}

// schedule keeps the in-memory timing of every subscription (when its
// next retry is due, when it last communicated, its heartbeat period and
// end) and a min-heap of the time each one next needs the deliverers.
type schedule struct {
	mu     sync.Mutex
	timing map[string]*timing
	timers timerHeap
	kick   chan struct{} // a timer earlier than wake was set: the schedule loop recomputes its wait
	wake   time.Time     // when the schedule loop looks next
}

// timing is what the schedule knows of one subscription.
type timing struct {
	id   string
	next time.Time // retry due
	comm time.Time // last successful communication or activation

	known     bool          // a current Subscription is tracked
	off       bool          // status off: nothing is due
	restHook  bool          // retries and heartbeats are the deliverers' (rest-hook)
	beats     bool          // heartbeats are due (active or error)
	heartbeat time.Duration // heartbeat period (0: none)
	end       time.Time     // end of the subscription (zero: none)

	floor time.Time // fired: not again before (until a new retry is set)
	at    time.Time // when the timer fires (valid while index >= 0)
	index int       // position in the heap, -1 when not armed
}

func newSchedule() *schedule {
	return &schedule{timing: map[string]*timing{}, kick: make(chan struct{}, 1)}
}

// get returns (creating it) the timing of id; s.mu must be held.
func (s *schedule) get(id string) *timing {
	t := s.timing[id]
	if t == nil {
		t = &timing{id: id, index: -1}
		s.timing[id] = t
	}
	return t
}

// due computes when t next needs the deliverers (zero: never).
func (t *timing) due() time.Time {
	if !t.known || t.off {
		return time.Time{}
	}
	at := t.end
	earlier := func(c time.Time) {
		if !c.IsZero() && (at.IsZero() || c.Before(at)) {
			at = c
		}
	}
	if t.restHook {
		earlier(t.next)
		if t.heartbeat > 0 && t.beats {
			earlier(t.comm.Add(t.heartbeat))
		}
	}
	if !at.IsZero() && at.Before(t.floor) {
		at = t.floor
	}
	return at
}

// arm (re)places t's timer at its due time; s.mu must be held.
func (s *schedule) arm(t *timing) {
	at := t.due()
	if at.IsZero() {
		s.disarm(t)
		return
	}
	t.at = at
	if t.index >= 0 {
		heap.Fix(&s.timers, t.index)
	} else {
		heap.Push(&s.timers, t)
	}
	if !s.wake.IsZero() && !at.Before(s.wake) {
		return // the loop looks by then anyway
	}
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// disarm removes t's timer; s.mu must be held.
func (s *schedule) disarm(t *timing) {
	if t.index >= 0 {
		heap.Remove(&s.timers, t.index)
	}
}

// track records the fields of a subscription the timers depend on.
func (s *schedule) track(sub *Subscription) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.get(sub.ID)
	t.known = true
	t.off = sub.Status == StatusOff
	t.restHook = sub.ChannelType == ChannelRestHook
	t.beats = sub.Status == StatusActive || sub.Status == StatusError
	t.heartbeat = sub.Heartbeat
	t.end = sub.End
	s.arm(t)
}

// untrack stops the timers of a subscription no longer known (its
// retry and communication times stay until forget).
func (s *schedule) untrack(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.timing[id]; t != nil {
		t.known = false
		s.disarm(t)
	}
}

// rearm puts back the timers of ids (a partition this node gained).
func (s *schedule) rearm(ids []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		if t := s.timing[id]; t != nil {
			s.arm(t)
		}
	}
}

// due pops the timers due at now and returns the ids of those this node
// delivers (owns). A fired timer is re-armed no earlier than now+again,
// as the old once-a-tick walk looked again at a subscription still due;
// one of a subscription owned elsewhere is dropped until rearm.
func (s *schedule) due(now time.Time, again time.Duration, owns func(string) bool) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	var fired []*timing
	for len(s.timers) > 0 && !now.Before(s.timers[0].at) {
		t := heap.Pop(&s.timers).(*timing)
		if !owns(t.id) {
			continue
		}
		ids = append(ids, t.id)
		t.floor = now.Add(again)
		fired = append(fired, t)
	}
	for _, t := range fired {
		s.arm(t)
	}
	return ids
}

// plan records when the schedule loop looks next.
func (s *schedule) plan(t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.wake = t
}

// earliest returns the earliest timer (zero when none).
func (s *schedule) earliest() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.timers) == 0 {
		return time.Time{}
	}
	return s.timers[0].at
}

// restore seeds the timing from a persisted delivery state.
func (s *schedule) restore(st fhirstore.SubscriptionState, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.get(st.SubscriptionID)
	if !st.NextAttempt.IsZero() {
		t.next = st.NextAttempt
	}
	if !st.LastSuccess.IsZero() {
		t.comm = st.LastSuccess
	}
	s.arm(t)
}

// touch records a communication (or a start) at at.
func (s *schedule) touch(id string, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.get(id)
	if at.After(t.comm) {
		t.comm = at
		s.arm(t)
	}
}

// setNext sets (zero: clears) the time of the next retry. A new retry is
// due at its time, even if the timer fired a moment ago.
func (s *schedule) setNext(id string, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.get(id)
	t.next = at
	if !at.IsZero() {
		t.floor = time.Time{}
	}
	s.arm(t)
}

// times returns the retry due and the last communication of id.
func (s *schedule) times(id string) (next, comm time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.timing[id]; t != nil {
		return t.next, t.comm
	}
	return time.Time{}, time.Time{}
}

func (s *schedule) forget(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.timing[id]; t != nil {
		s.disarm(t)
		delete(s.timing, id)
	}
}

// timerHeap orders timings by when they fire (container/heap).
type timerHeap []*timing

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}

// Push implements heap.Interface.
func (h *timerHeap) Push(x any) {
	t := x.(*timing)
	t.index = len(*h)
	*h = append(*h, t)
}

// Pop implements heap.Interface.
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	t.index = -1
	*h = old[:len(old)-1]
	return t
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
