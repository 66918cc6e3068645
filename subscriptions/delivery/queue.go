package delivery

import (
	"context"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Queue holds the subscriptions that have delivery work, each at most
// once, and guarantees one worker per subscription at a time: a push of
// a subscription being worked on is remembered and re-queued when the
// worker is done.
//
// It also keeps delivery fair between receivers. Every attempt is
// accounted to its destination (host:port of the endpoint):
//   - at most fastMax attempts run at once to destinations that answer
//     in time (the workers proper), at most half of them to one
//     destination, so that a receiver that starts hanging holds at most
//     half the workers before it is found slow;
//   - a destination whose last attempt took longer than slowAfter (a slow
//     or hung receiver) is "slow": new attempts to slow destinations run
//     in a separate pool of at most slowMax, and at most hostMax attempts
//     run at once per slow destination;
//   - an attempt running longer than slowAfter leaves the fast pool
//     (migrate) and makes its destination slow, so that hung receivers
//     cannot hold the workers the others need; the server's cap on an
//     attempt's time limit bounds how long it lingers.
//
// So however many receivers hang, the healthy ones keep fastMax workers,
// less the attempts that have not yet been running for slowAfter (at most
// half of them per hung destination).
type Queue struct {
	mu sync.Mutex
	// pending holds the waiting subscriptions per destination, in push
	// order; dests lists the destinations with waiting work in the order
	// Pop serves them (round robin), so that a Pop costs the number of
	// destinations, not of waiting subscriptions, when the limits hold
	// some destinations back.
	pending map[string]*fifo
	dests   []string
	queued  map[string]string // id → destination, while pending
	busy    map[string]*attempt
	again   map[string]bool
	wake    chan struct{}

	dest                      func(id string) string // destination of a subscription ("" for none)
	perDest                   map[string]int         // attempts running per destination
	slowDst                   map[string]bool        // destinations whose last attempt was slow
	fast                      int                    // attempts in the fast pool
	slow                      int                    // attempts started in the slow pool
	fastMax, slowMax, hostMax int
	slowAfter                 time.Duration
}

// attempt is the work of one worker on one subscription.
type attempt struct {
	dest  string
	start time.Time
	pool  int // poolFast, poolSlow or poolStuck
}

const (
	poolFast  = iota // counts in queue.fast
	poolSlow         // counts in queue.slow
	poolStuck        // migrated out of the fast pool; counts nowhere
)

// Limits are the fairness limits of a Queue.
type Limits struct {
	// Fast is the most attempts at once to destinations that answer in
	// time (the workers proper).
	Fast int
	// Slow is the most attempts at once to slow destinations.
	Slow int
	// PerHost is the most attempts at once to one slow destination.
	PerHost int
	// SlowAfter is how long an attempt may take before its destination
	// counts as slow.
	SlowAfter time.Duration
}

// NewQueue returns an empty queue; dest gives the destination of a
// subscription ("" for none; nil: always "").
func NewQueue(dest func(string) string, lim Limits) *Queue {
	if dest == nil {
		dest = func(string) string { return "" }
	}
	return &Queue{pending: map[string]*fifo{}, queued: map[string]string{}, busy: map[string]*attempt{}, again: map[string]bool{},
		wake: make(chan struct{}, 1), dest: dest,
		perDest: map[string]int{}, slowDst: map[string]bool{},
		fastMax: max(lim.Fast, 1), slowMax: max(lim.Slow, 1), hostMax: max(lim.PerHost, 1),
		slowAfter: lim.SlowAfter}
}

// Goroutines is the number of workers the limits can keep busy: the fast
// and slow pools and the attempts that migrated out of the fast pool.
func (lim Limits) Goroutines() int { return 2*max(lim.Fast, 1) + max(lim.Slow, 1) }

// Push queues a subscription that has delivery work (once; a push while
// a worker is on it re-queues it when the worker is done).
func (q *Queue) Push(id string) {
	d := q.dest(id)
	q.mu.Lock()
	defer q.mu.Unlock()
	q.pushLocked(id, d)
}

func (q *Queue) pushLocked(id, dest string) {
	switch {
	case q.busy[id] != nil:
		q.again[id] = true
		return
	}
	if _, ok := q.queued[id]; ok {
		return
	}
	q.queued[id] = dest
	f := q.pending[dest]
	if f == nil {
		f = &fifo{}
		q.pending[dest] = f
		q.dests = append(q.dests, dest)
	}
	f.push(id)
	q.signal()
}

// fifo is the waiting subscriptions of one destination.
type fifo struct {
	ids  []string
	head int
}

func (f *fifo) push(id string) { f.ids = append(f.ids, id) }

func (f *fifo) len() int { return len(f.ids) - f.head }

func (f *fifo) pop() string {
	id := f.ids[f.head]
	f.ids[f.head] = ""
	f.head++
	if f.head > 32 && f.head*2 > len(f.ids) {
		f.ids = append(f.ids[:0], f.ids[f.head:]...)
		f.head = 0
	}
	return id
}

func (q *Queue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// admit returns the pool an attempt to dest may start in, or -1 when the
// limits hold it back; q.mu must be held.
func (q *Queue) admit(dest string) int {
	if dest != "" && q.slowDst[dest] {
		if q.slow < q.slowMax && q.perDest[dest] < q.hostMax {
			return poolSlow
		}
		return -1
	}
	if q.fast < q.fastMax && (dest == "" || q.perDest[dest] < max(q.fastMax/2, 1)) {
		return poolFast
	}
	return -1
}

// Pop waits for a subscription the limits let a worker work on, marks it
// busy and returns it; ok is false when ctx ends.
func (q *Queue) Pop(ctx context.Context) (string, bool) {
	for {
		q.mu.Lock()
		for i, dest := range q.dests {
			pool := q.admit(dest)
			if pool < 0 {
				continue
			}
			f := q.pending[dest]
			id := f.pop()
			q.dests = append(q.dests[:i], q.dests[i+1:]...)
			if f.len() > 0 {
				q.dests = append(q.dests, dest) // its next turn comes after the others'
			} else {
				delete(q.pending, dest)
			}
			delete(q.queued, id)
			q.busy[id] = &attempt{dest: dest, start: time.Now(), pool: pool}
			q.perDest[dest]++
			if pool == poolFast {
				q.fast++
			} else {
				q.slow++
			}
			if len(q.queued) > 0 {
				q.signal()
			}
			q.mu.Unlock()
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

// Done releases a subscription; it is re-queued if pushed meanwhile.
func (q *Queue) Done(id string) {
	d := q.dest(id)
	q.mu.Lock()
	defer q.mu.Unlock()
	if a := q.busy[id]; a != nil {
		switch a.pool {
		case poolFast:
			q.fast--
		case poolSlow:
			q.slow--
		}
		if q.perDest[a.dest]--; q.perDest[a.dest] <= 0 {
			delete(q.perDest, a.dest)
		}
	}
	delete(q.busy, id)
	if q.again[id] {
		delete(q.again, id)
		q.pushLocked(id, d)
	}
	if len(q.queued) > 0 {
		q.signal()
	}
}

// Observe records how long one request to dest took: longer than
// slowAfter makes dest slow, shorter makes it fast again.
func (q *Queue) Observe(dest string, took time.Duration) {
	if dest == "" {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if took > q.slowAfter {
		q.slowDst[dest] = true
	} else {
		delete(q.slowDst, dest)
	}
}

// Migrate moves the attempts of the fast pool that have run longer than
// slowAfter out of it (their destinations become slow), so that waiting
// work to other destinations gets their place.
func (q *Queue) Migrate(now time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	moved := false
	for _, a := range q.busy {
		if a.pool == poolFast && now.Sub(a.start) > q.slowAfter {
			a.pool = poolStuck
			q.fast--
			if a.dest != "" {
				q.slowDst[a.dest] = true
			}
			moved = true
		}
	}
	if moved && len(q.queued) > 0 {
		q.signal()
	}
}

// BusyWhere reports whether a worker is on a subscription for which
// pred holds.
func (q *Queue) BusyWhere(pred func(id string) bool) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	for id := range q.busy {
		if pred(id) {
			return true
		}
	}
	return false
}

// Stalled reports whether the subscription's delivery is the receiver's
// to wait for: an attempt of it has been running longer than slowAfter,
// or its destination is slow (its last attempt took longer).
func (q *Queue) Stalled(id string) bool {
	d := q.dest(id)
	q.mu.Lock()
	defer q.mu.Unlock()
	if a := q.busy[id]; a != nil && time.Since(a.start) > q.slowAfter {
		return true
	}
	return d != "" && q.slowDst[d]
}

// Destination is the fairness key of an endpoint URL: its lower-case
// host:port, the port defaulted from the scheme ("" when unparsable).
func Destination(endpoint string) string {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return ""
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if port == "" {
		port = "80"
		if strings.EqualFold(u.Scheme, "https") {
			port = "443"
		}
	}
	return net.JoinHostPort(host, port)
}

// Depth returns the number of subscriptions waiting for a worker and the
// number a worker is on.
func (q *Queue) Depth() (pending, busy int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.queued), len(q.busy)
}
