package delivery

import (
	"context"
	"strconv"
	"testing"
	"time"
)

// TestQueueFairness drives the delivery queue's limits by hand: one
// destination takes at most half the fast pool; an attempt that hangs
// leaves the pool and makes its destination slow; a slow destination is
// served by the slow pool, at most hostMax at once.
func TestQueueFairness(t *testing.T) {
	dests := map[string]string{"a1": "hung:1", "a2": "hung:1", "a3": "hung:1", "b1": "ok:1", "b2": "ok:1"}
	q := NewQueue(func(id string) string { return dests[id] },
		Limits{Fast: 4, Slow: 1, PerHost: 1, SlowAfter: 10 * time.Millisecond})
	for _, id := range []string{"a1", "a2", "a3", "b1", "b2"} {
		q.Push(id)
	}
	pop := func() string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		id, ok := q.Pop(ctx)
		if !ok {
			return ""
		}
		return id
	}
	got := []string{pop(), pop(), pop(), pop()}
	// Destinations take turns (round robin), each in push order; a3
	// waits: hung:1 holds half the fast pool.
	want := []string{"a1", "b1", "a2", "b2"}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("pops %v, want %v", got, want)
		}
	}
	if id := pop(); id != "" {
		t.Fatalf("popped %s with the fast pool full", id)
	}
	q.Done("b1")
	q.Done("b2")
	time.Sleep(20 * time.Millisecond)
	q.Migrate(time.Now()) // a1 and a2 hang: they leave the fast pool, hung:1 is slow
	if id := pop(); id != "" {
		t.Fatalf("popped %s: hung:1 already holds more than hostMax", id)
	}
	q.Done("a1")
	q.Done("a2")
	if id := pop(); id != "a3" {
		t.Fatalf("popped %q, want a3 in the slow pool", id)
	}
	if q.slow != 1 || q.fast != 0 {
		t.Errorf("slow %d, fast %d; want a3 counted in the slow pool", q.slow, q.fast)
	}
	q.Done("a3")
	q.Observe("hung:1", time.Millisecond) // answered in time: fast again
	q.Push("a1")
	if id := pop(); id != "a1" || q.fast != 1 {
		t.Errorf("popped %q with fast %d; want a1 in the fast pool", id, q.fast)
	}
}

// TestQueueStalled: a subscription is stalled while an attempt of it runs
// longer than slowAfter, or while its destination's last attempt was slow.
func TestQueueStalled(t *testing.T) {
	dests := map[string]string{"a": "slow:1", "b": "fast:1", "c": "slow:1"}
	const slowAfter = 20 * time.Millisecond
	q := NewQueue(func(id string) string { return dests[id] }, Limits{Fast: 4, Slow: 1, PerHost: 1, SlowAfter: slowAfter})
	q.Push("a")
	q.Push("b")
	ctx := context.Background()
	for range 2 {
		if _, ok := q.Pop(ctx); !ok {
			t.Fatal("pop")
		}
	}
	if q.Stalled("a") || q.Stalled("b") || q.Stalled("c") {
		t.Fatal("stalled before any attempt took long")
	}
	// the attempt of a runs past slowAfter; b's is done in time
	q.Done("b")
	q.Observe("fast:1", time.Millisecond)
	deadline := time.Now().Add(5 * time.Second)
	for !q.Stalled("a") {
		if time.Now().After(deadline) {
			t.Fatal("a's attempt running past slowAfter is not stalled")
		}
		time.Sleep(slowAfter / 2)
	}
	if q.Stalled("b") {
		t.Error("b stalled after a quick attempt")
	}
	// a's attempt ends slow: its destination is slow, c shares it
	q.Done("a")
	q.Observe("slow:1", 2*slowAfter)
	if !q.Stalled("a") || !q.Stalled("c") {
		t.Errorf("after a slow attempt: a stalled %v, c stalled %v; want both", q.Stalled("a"), q.Stalled("c"))
	}
	q.Observe("slow:1", time.Millisecond)
	if q.Stalled("a") || q.Stalled("c") {
		t.Error("still stalled after a quick attempt to the destination")
	}
}

// BenchmarkQueuePopOneHost: 10,000 subscriptions waiting for one
// receiver whose share of the workers is taken. A Pop costs the number of
// destinations with waiting work, not the number of waiting
// subscriptions: each Pop here finds the one host held back and another
// host's subscription.
func BenchmarkQueuePopOneHost(b *testing.B) {
	dest := func(id string) string {
		if id[0] == 'h' {
			return "held:1"
		}
		return "free:1"
	}
	q := NewQueue(dest, Limits{Fast: 16, Slow: 4, PerHost: 4, SlowAfter: time.Hour})
	for i := range 10_000 {
		q.Push("h" + strconv.Itoa(i))
	}
	ctx := context.Background()
	for range 8 { // hold:1's half of the fast pool
		if _, ok := q.Pop(ctx); !ok {
			b.Fatal("pop")
		}
	}
	b.ResetTimer()
	for i := range b.N {
		id := "f" + strconv.Itoa(i)
		q.Push(id)
		got, ok := q.Pop(ctx)
		if !ok || got != id {
			b.Fatalf("popped %q, want %q", got, id)
		}
		q.Done(got)
	}
}
