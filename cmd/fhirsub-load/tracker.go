package main

import (
	"context"
	"sync"
	"time"
)

// tracker records when the notifications of each write arrived on one
// channel, keyed by the id of the written resource. want is the number of
// notifications one write should cause there (one per matching
// subscription or connection).
type tracker struct {
	name string
	want int

	mu   sync.Mutex
	got  map[string][]time.Time
	wake chan struct{}
}

func newTracker(name string, want int) *tracker {
	return &tracker{name: name, want: want, got: map[string][]time.Time{}, wake: make(chan struct{}, 1)}
}

// arrive records one notification about id, received at.
func (t *tracker) arrive(id string, at time.Time) {
	t.mu.Lock()
	t.got[id] = append(t.got[id], at)
	t.mu.Unlock()
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// waitComplete waits until every acknowledged write has its want
// notifications, the timeout passes or ctx ends, and reports whether all
// came. Notifications about other ids (late ones of an earlier run)
// count for nothing.
func (t *tracker) waitComplete(ctx context.Context, writes []write, timeout time.Duration) bool {
	var ids []string
	for _, w := range writes {
		if w.ID != "" {
			ids = append(ids, w.ID)
		}
	}
	next := 0 // ids[:next] are complete
	done := func() bool {
		t.mu.Lock()
		defer t.mu.Unlock()
		for next < len(ids) && len(t.got[ids[next]]) >= t.want {
			next++
		}
		return next == len(ids)
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for !done() {
		select {
		case <-t.wake:
		case <-time.After(50 * time.Millisecond):
		case <-deadline.C:
			return done()
		case <-ctx.Done():
			return false
		}
	}
	return true
}

// outcome is what one channel made of a run's acknowledged writes.
type outcome struct {
	FromSend latencies // intended send time → notification received
	FromAck  latencies // 201 received → notification received
	Expected int       // acknowledged writes × want
	Lost     int       // expected notifications that never came
	Dups     int       // notifications beyond want for one write
	Stray    int       // notifications about ids the client never wrote
	First    time.Time // first and last arrival
	Last     time.Time
}

// outcome joins the writes with the arrivals. Writes that were not
// acknowledged expect nothing.
func (t *tracker) outcome(writes []write) outcome {
	t.mu.Lock()
	defer t.mu.Unlock()
	var o outcome
	var fromSend, fromAck []time.Duration
	known := make(map[string]bool, len(writes))
	for _, w := range writes {
		if w.ID == "" {
			continue
		}
		known[w.ID] = true
		o.Expected += t.want
		got := t.got[w.ID]
		o.Lost += max(0, t.want-len(got))
		o.Dups += max(0, len(got)-t.want)
		for i, at := range got {
			if i >= t.want {
				break
			}
			fromSend = append(fromSend, at.Sub(w.Intended))
			fromAck = append(fromAck, at.Sub(w.Acked))
		}
	}
	for id, got := range t.got {
		if !known[id] {
			o.Stray += len(got)
		}
		for _, at := range got {
			if o.First.IsZero() || at.Before(o.First) {
				o.First = at
			}
			if at.After(o.Last) {
				o.Last = at
			}
		}
	}
	o.FromSend, o.FromAck = summarize(fromSend), summarize(fromAck)
	return o
}
