package subscriptions

import (
	"testing"
	"time"

	"github.com/fhirsub/fhirsub/fhirstore"
)

func TestLagTracker(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	ev := func(n int64, ms int) fhirstore.Event { return fhirstore.Event{Number: n, Time: at(ms)} }
	l := newLagTracker()
	check := func(step string, now time.Time, matcher, resthook time.Duration) {
		t.Helper()
		// every check is lagEvery after the previous one: the scan runs again
		got := l.lag(now)
		if got.Matcher != matcher || got.RestHook != resthook {
			t.Fatalf("%s: lag %+v, want matcher %v rest-hook %v", step, got, matcher, resthook)
		}
	}
	check("idle", at(0), 0, 0)

	l.matching(at(100))
	check("matcher on a change", at(400), 300*time.Millisecond, 0)
	l.matching(time.Time{})
	check("matcher caught up", at(500), 0, 0)

	// a: events 1-2 recorded at 1000 and 1100; b: event 1 at 1050
	l.recorded("a", at(1000), 1, at(1000))
	l.recorded("a", at(1100), 2, at(1100))
	l.recorded("b", at(1050), 1, at(1050))
	check("two backlogs", at(1500), 0, 500*time.Millisecond)
	// a's event 1 delivered, event 2 read ahead
	l.delivered("a", 1, at(1100))
	check("a's oldest moves on", at(1600), 0, 550*time.Millisecond) // b's 1050 is now the oldest
	// b's receiver fails: b is in backoff and does not count
	l.failing("b", true)
	check("b failing", at(1700), 0, 600*time.Millisecond)
	// a delivered everything read; event 3 was recorded meanwhile
	l.recorded("a", at(1650), 3, at(1650))
	l.delivered("a", 2, time.Time{})
	check("a: newer event than read ahead", at(1800), 0, 150*time.Millisecond)
	// the next attempt reads event 3 itself
	l.attempt("a", 2, []fhirstore.Event{ev(3, 1650)})
	l.delivered("a", 3, time.Time{})
	check("a caught up, b failing", at(1900), 0, 0)
	// an attempt that reads nothing while a newer event was recorded
	// (the read raced the record) keeps the backlog
	l.recorded("a", at(1950), 4, at(1950))
	l.attempt("a", 3, nil)
	check("a: read raced record", at(2000), 0, 50*time.Millisecond)
	l.attempt("a", 3, []fhirstore.Event{ev(4, 1950)})
	l.delivered("a", 4, time.Time{})
	// b recovers: a success clears failing
	l.attempt("b", 0, []fhirstore.Event{ev(1, 1050)})
	check("b retried, still failing", at(2100), 0, 0)
	l.delivered("b", 1, time.Time{})
	check("all delivered", at(2200), 0, 0)
	// a backlog found by a deliverer only (after a restart)
	l.attempt("c", 7, []fhirstore.Event{ev(8, 2000), ev(9, 2100)})
	check("backlog seen by the deliverer", at(2300), 0, 300*time.Millisecond)
	l.forget("c")
	check("forgotten", at(2400), 0, 0)

	// a receiver that failed before it had a backlog (a refused
	// handshake): the events recorded later do not count either
	l.failing("e", true)
	l.recorded("e", at(2400), 1, at(2400))
	check("failed before the backlog", at(2450), 0, 0)
	l.forget("e")

	// within lagEvery the oldest backlog is not searched again, but its
	// age is computed at now
	l.recorded("d", at(2500), 1, at(2500))
	check("new backlog", at(2600), 0, 100*time.Millisecond)
	l.delivered("d", 1, time.Time{})
	if got := l.lag(at(2650)).RestHook; got != 150*time.Millisecond {
		t.Fatalf("cached: rest-hook lag %v, want 150ms", got)
	}
	check("next scan", at(2700), 0, 0)

	// a slow receiver (the queue's judgement) does not count; the next
	// oldest backlog does
	slow := map[string]bool{"f": true}
	l.stalled = func(id string) bool { return slow[id] }
	l.recorded("f", at(3000), 1, at(3000))
	l.recorded("g", at(3200), 1, at(3200))
	check("slow receiver skipped", at(3500), 0, 300*time.Millisecond)
	slow["f"] = false
	check("receiver fast again", at(3600), 0, 600*time.Millisecond)

	l.stalled = nil

	// a receiver that recovers after a failure: its backlog counts from
	// the recovery, not from its oldest event's commit
	clock := at(4500)
	l.now = func() time.Time { return clock }
	l.recorded("h", at(4000), 1, at(4000))
	l.recorded("h", at(4100), 2, at(4100))
	l.forget("g")
	l.forget("f")
	l.failing("h", true)
	check("h failing", at(4400), 0, 0)
	l.delivered("h", 1, at(4100)) // the retry at 4500 succeeds
	check("h recovered", at(4600), 0, 100*time.Millisecond)
	l.recorded("i", at(4550), 1, at(4550))
	check("an older due backlog", at(4700), 0, 200*time.Millisecond)
}

// TestLagSkipsManySlowReceivers: past slowBeforeSort slow receivers the
// search sorts the rest; the figure is the same either way.
func TestLagSkipsManySlowReceivers(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for slowN := 0; slowN <= 10; slowN++ { // 10: every receiver is slow
		l := newLagTracker()
		slow := map[string]bool{}
		l.stalled = func(id string) bool { return slow[id] }
		// backlogs s0..s9 at t0+0..9 ms (recorded out of order); the
		// oldest slowN are slow
		for _, i := range []int{7, 2, 9, 0, 5, 3, 8, 1, 6, 4} {
			at := t0.Add(time.Duration(i) * time.Millisecond)
			id := string(rune('a' + i))
			l.recorded(id, at, 1, at)
			if i < slowN {
				slow[id] = true
			}
		}
		want := time.Duration(0)
		if slowN < 10 {
			want = time.Second - time.Duration(slowN)*time.Millisecond
		}
		if got := l.lag(t0.Add(time.Second)).RestHook; got != want {
			t.Fatalf("%d slow receivers: rest-hook lag %v, want %v", slowN, got, want)
		}
	}
}
