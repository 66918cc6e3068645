package delivery

import (
	"container/heap"
	"math"
	"sync"
	"time"
)

// Timing is what the timers of one subscription depend on.
type Timing struct {
	// Off: nothing is due.
	Off bool
	// RestHook: retries and heartbeats are the deliverers' (rest-hook).
	RestHook bool
	// Beats: heartbeats are due (status active or error).
	Beats bool
	// Heartbeat is the heartbeat period (0: none).
	Heartbeat time.Duration
	// End is the end of the subscription (zero: none).
	End time.Time
}

// Schedule keeps the in-memory timing of every subscription (when its
// next retry is due, when it last communicated, its heartbeat period and
// end) and a min-heap (container/heap) of the time each one next needs the
// deliverers, so that finding the due ones costs their number, not the
// number of subscriptions. It is safe for concurrent use.
type Schedule struct {
	mu     sync.Mutex
	timing map[string]*timing
	timers timerHeap
	kick   chan struct{} // a timer earlier than wake was set: the schedule loop recomputes its wait
	wake   time.Time     // when the schedule loop looks next
}

// timing is what the schedule knows of one subscription. It is kept for
// every subscription, so its times are instants (8 bytes, not a
// time.Time's 24) and its id is the map's key, not a field (the heap of
// armed timers holds it): 64 bytes a subscription instead of 176.
type timing struct {
	next  instant // retry due
	comm  instant // last successful communication or activation
	end   instant // the subscription's end
	floor instant // fired: not again before (until a new retry is set)
	at    instant // when the timer fires (valid while index >= 0)
	beat  time.Duration
	index int32 // position in the heap, -1 when not armed

	known    bool // a current Subscription is tracked; the fields below are its
	off      bool
	restHook bool
	beats    bool
}

// instant is a time in Unix nanoseconds; 0 is no time. Times before 1678
// or after 2262 (outside int64 nanoseconds) are clamped: an end that far
// back is past, one that far ahead never comes.
type instant int64

func instantOf(t time.Time) instant {
	switch {
	case t.IsZero():
		return 0
	case t.Before(minInstant):
		return 1
	case t.After(maxInstant):
		return math.MaxInt64
	}
	if n := instant(t.UnixNano()); n != 0 {
		return n
	}
	return 1
}

var (
	minInstant = time.Unix(0, math.MinInt64+1)
	maxInstant = time.Unix(0, math.MaxInt64)
)

// InstantOf returns t in Unix nanoseconds as the schedule keeps its
// times: 0 for the zero time, and clamped outside int64 nanoseconds (an
// instant before 1678 is 1, long past; one after 2262 is math.MaxInt64,
// which never comes). A Subscription keeps its end so.
func InstantOf(t time.Time) int64 { return int64(instantOf(t)) }

// TimeOf returns an InstantOf value as a time.Time in UTC (zero for 0).
func TimeOf(n int64) time.Time { return instant(n).time() }

// time returns i as a time.Time in UTC (zero for 0).
func (i instant) time() time.Time {
	if i == 0 {
		return time.Time{}
	}
	return time.Unix(0, int64(i)).UTC()
}

// NewSchedule returns an empty schedule.
func NewSchedule() *Schedule {
	return &Schedule{timing: map[string]*timing{}, kick: make(chan struct{}, 1)}
}

// Kick receives when a timer earlier than the planned look was set: the
// schedule loop recomputes its wait.
func (s *Schedule) Kick() <-chan struct{} { return s.kick }

// get returns (creating it) the timing of id; s.mu must be held.
func (s *Schedule) get(id string) *timing {
	t := s.timing[id]
	if t == nil {
		t = &timing{index: -1}
		s.timing[id] = t
	}
	return t
}

// Due computes when t next needs the deliverers (0: never).
func (t *timing) due() instant {
	if !t.known || t.off {
		return 0
	}
	at := t.end
	earlier := func(c instant) {
		if c != 0 && (at == 0 || c < at) {
			at = c
		}
	}
	if t.restHook {
		earlier(t.next)
		if t.beat > 0 && t.beats {
			earlier(instantOf(t.comm.time().Add(t.beat)))
		}
	}
	if at != 0 && at < t.floor {
		at = t.floor
	}
	return at
}

// arm (re)places the timer of id (timing t) at its due time; s.mu must be
// held.
func (s *Schedule) arm(id string, t *timing) {
	at := t.due()
	if at == 0 {
		s.disarm(t)
		return
	}
	t.at = at
	if t.index >= 0 {
		heap.Fix(&s.timers, int(t.index))
	} else {
		heap.Push(&s.timers, armed{id: id, t: t})
	}
	if !s.wake.IsZero() && !at.time().Before(s.wake) {
		return // the loop looks by then anyway
	}
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// disarm removes t's timer; s.mu must be held.
func (s *Schedule) disarm(t *timing) {
	if t.index >= 0 {
		heap.Remove(&s.timers, int(t.index))
	}
}

// Track records the fields of a subscription the timers depend on.
func (s *Schedule) Track(id string, sub Timing) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.get(id)
	t.known, t.off, t.restHook, t.beats = true, sub.Off, sub.RestHook, sub.Beats
	t.beat, t.end = sub.Heartbeat, instantOf(sub.End)
	s.arm(id, t)
}

// Untrack stops the timers of a subscription no longer known (its
// retry and communication times stay until forget).
func (s *Schedule) Untrack(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.timing[id]; t != nil {
		t.known = false
		s.disarm(t)
	}
}

// Rearm puts back the timers of ids (a partition this node gained).
func (s *Schedule) Rearm(ids []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		if t := s.timing[id]; t != nil {
			s.arm(id, t)
		}
	}
}

// Due pops the timers due at now and returns the ids of those this node
// delivers (owns). A fired timer is re-armed no earlier than now+again,
// as the old once-a-tick walk looked again at a subscription still due;
// one of a subscription owned elsewhere is dropped until rearm.
func (s *Schedule) Due(now time.Time, again time.Duration, owns func(string) bool) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	var fired []armed
	for len(s.timers) > 0 && instantOf(now) >= s.timers[0].t.at {
		a := heap.Pop(&s.timers).(armed)
		if !owns(a.id) {
			continue
		}
		ids = append(ids, a.id)
		a.t.floor = instantOf(now.Add(again))
		fired = append(fired, a)
	}
	for _, a := range fired {
		s.arm(a.id, a.t)
	}
	return ids
}

// Plan records when the schedule loop looks next.
func (s *Schedule) Plan(t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.wake = t
}

// Earliest returns the earliest timer (zero when none).
func (s *Schedule) Earliest() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.timers) == 0 {
		return time.Time{}
	}
	return s.timers[0].t.at.time()
}

// Restore seeds the timing of id from a persisted delivery state: the
// next attempt and the last success (zero: unknown).
func (s *Schedule) Restore(id string, next, comm time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.get(id)
	if !next.IsZero() {
		t.next = instantOf(next)
	}
	if !comm.IsZero() {
		t.comm = instantOf(comm)
	}
	s.arm(id, t)
}

// Touch records a communication (or a start) at at.
func (s *Schedule) Touch(id string, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.get(id)
	if a := instantOf(at); a > t.comm {
		t.comm = a
		s.arm(id, t)
	}
}

// SetNext sets (zero: clears) the time of the next retry. A new retry is
// Due at its time, even if the timer fired a moment ago.
func (s *Schedule) SetNext(id string, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.get(id)
	t.next = instantOf(at)
	if !at.IsZero() {
		t.floor = 0
	}
	s.arm(id, t)
}

// Times returns the retry due and the last communication of id.
func (s *Schedule) Times(id string) (next, comm time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.timing[id]; t != nil {
		return t.next.time(), t.comm.time()
	}
	return time.Time{}, time.Time{}
}

// Forget drops every timing of id.
func (s *Schedule) Forget(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.timing[id]; t != nil {
		s.disarm(t)
		delete(s.timing, id)
	}
}

// armed is a timer set: the subscription's id and its timing.
type armed struct {
	id string
	t  *timing
}

// timerHeap orders the armed timers by when they fire (container/heap).
type timerHeap []armed

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].t.at < h[j].t.at }
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].t.index, h[j].t.index = int32(i), int32(j)
}

// Push implements heap.Interface.
func (h *timerHeap) Push(x any) {
	a := x.(armed)
	a.t.index = int32(len(*h))
	*h = append(*h, a)
}

// Pop implements heap.Interface.
func (h *timerHeap) Pop() any {
	old := *h
	a := old[len(old)-1]
	old[len(old)-1] = armed{}
	a.t.index = -1
	*h = old[:len(old)-1]
	return a
}
