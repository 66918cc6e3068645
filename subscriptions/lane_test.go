package subscriptions

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/fhirsub/fhirsub/fhirstore"
	"github.com/fhirsub/fhirsub/subscriptions/delivery"
	"github.com/fhirsub/fhirsub/topics"
)

func numbered(from, to int64) []fhirstore.Event {
	var evs []fhirstore.Event
	for n := from; n <= to; n++ {
		evs = append(evs, fhirstore.Event{Match: fhirstore.Match{SubscriptionID: "s"}, Number: n})
	}
	return evs
}

func numbers(evs []fhirstore.Event) []int64 {
	var out []int64
	for _, ev := range evs {
		out = append(out, ev.Number)
	}
	return out
}

// TestLaneTake: offered events join ahead only when they are the next
// numbers; those already known are skipped and a gap ends the take, so
// that the worker reads the event log for what is missing.
func TestLaneTake(t *testing.T) {
	tests := []struct {
		name      string
		delivered int64
		ahead     []fhirstore.Event
		offers    [][]fhirstore.Event
		want      []int64
		gap       bool // the log holds events the offers did not bring
	}{
		{"next after delivered", 4, nil, [][]fhirstore.Event{numbered(5, 6), numbered(7, 7)}, []int64{5, 6, 7}, false},
		{"after ahead", 4, numbered(5, 6), [][]fhirstore.Event{numbered(5, 8)}, []int64{5, 6, 7, 8}, false},
		{"already known", 4, numbered(5, 9), [][]fhirstore.Event{numbered(6, 7)}, []int64{5, 6, 7, 8, 9}, false},
		{"gap", 4, nil, [][]fhirstore.Event{numbered(6, 8)}, nil, true},
		{"gap after some", 4, nil, [][]fhirstore.Event{numbered(5, 5), numbered(7, 8)}, []int64{5}, true},
		// a dropped offer is a gap: its events are in the log only
		{"full inbox drops", 0, nil, [][]fhirstore.Event{numbered(1, inboxMax), numbered(inboxMax+1, inboxMax+1)}, numbers(numbered(1, inboxMax)), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ln := &lane{version: "1", st: fhirstore.SubscriptionState{Delivered: tc.delivered}, ahead: slices.Clone(tc.ahead)}
			for _, o := range tc.offers {
				ln.offer("1", o)
			}
			ln.take()
			if got := numbers(ln.ahead); !slices.Equal(got, tc.want) {
				t.Errorf("ahead %v, want %v", got, tc.want)
			}
			if ln.gap != tc.gap {
				t.Errorf("gap %v, want %v", ln.gap, tc.gap)
			}
			ln.take() // the inbox was emptied
			if got := numbers(ln.ahead); !slices.Equal(got, tc.want) {
				t.Errorf("second take: ahead %v, want %v", got, tc.want)
			}
		})
	}
}

// TestLanesOfferVersion: an offer reaches only the lane filled under the
// subscription's version, and the inbox may be offered to while its worker
// takes (run under -race).
func TestLanesOfferVersion(t *testing.T) {
	l := newLanes()
	l.offer("s", "1", numbered(1, 1)) // no lane: nothing happens
	ln := &lane{version: "2"}
	l.put("s", ln)
	l.offer("s", "1", numbered(1, 1)) // an older version's event
	ln.take()
	if len(ln.ahead) != 0 {
		t.Fatalf("an event offered under another version joined the lane: %v", numbers(ln.ahead))
	}
	l.renew("s", "1", "3") // not the lane's version: nothing changes
	l.offer("s", "3", numbered(1, 1))
	ln.take()
	if len(ln.ahead) != 0 {
		t.Fatalf("renew from another version moved the lane: %v", numbers(ln.ahead))
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for n := int64(1); n <= 100; n++ {
			l.offer("s", "2", numbered(n, n))
		}
	}()
	for len(ln.ahead) < 100 {
		ln.take()
	}
	wg.Wait()
	if got := numbers(ln.ahead); !slices.Equal(got, numbers(numbered(1, 100))) {
		t.Errorf("ahead %v, want 1…100", got)
	}
	l.renew("s", "2", "4") // the deliverer's own status write
	l.offer("s", "4", numbered(101, 101))
	ln.take()
	if n := len(ln.ahead); n != 101 {
		t.Errorf("after renew: %d events ahead, want 101", n)
	}
}

// logEvents is an event log of numbered events that counts its reads.
type logEvents struct {
	fhirstore.EventStore
	log   []fhirstore.Event
	reads int
}

func (l *logEvents) Events(_ context.Context, _ string, from, _ int64, limit int) ([]fhirstore.Event, error) {
	l.reads++
	var out []fhirstore.Event
	for _, e := range l.log {
		if e.Number >= from && len(out) < limit {
			out = append(out, e)
		}
	}
	return out, nil
}

// TestPendingReadsOnlyWhatOffersMiss: with a batch of 20, a lane holding
// the one event just offered sends it without reading the log; an empty
// lane reads it; a gap among the offers makes the next notification read
// the events the offers missed, in order.
func TestPendingReadsOnlyWhatOffersMiss(t *testing.T) {
	ctx := context.Background()
	ev := &logEvents{log: numbered(1, 8)}
	d := &deliverer{events: ev}
	ln := &lane{version: "1"}

	got, _ := d.pending(ctx, "s", ln, 20) // empty: reads
	if ev.reads != 1 || !slices.Equal(numbers(got), numbers(numbered(1, 8))) {
		t.Fatalf("empty lane: %v after %d reads, want 1…8 after 1", numbers(got), ev.reads)
	}
	ln.st.Delivered = 8
	ln.delivered(8)

	ev.log = append(ev.log, numbered(9, 9)...)
	ln.offer("1", numbered(9, 9))
	got, _ = d.pending(ctx, "s", ln, 20)
	if ev.reads != 1 || !slices.Equal(numbers(got), []int64{9}) {
		t.Fatalf("offered event: %v after %d reads, want [9] without a read", numbers(got), ev.reads)
	}
	ln.st.Delivered = 9
	ln.delivered(9)

	ev.log = append(ev.log, numbered(10, 12)...) // 10's offer was dropped
	ln.offer("1", numbered(11, 12))
	ln.take() // as a run's end does
	if !ln.pendingWork() {
		t.Fatal("a gap among the offers is no pending work")
	}
	got, _ = d.pending(ctx, "s", ln, 20)
	if ev.reads != 2 || !slices.Equal(numbers(got), []int64{10, 11, 12}) {
		t.Fatalf("after a gap: %v after %d reads, want [10 11 12] after 2", numbers(got), ev.reads)
	}
	if ln.gap {
		t.Error("the read left the gap flag set")
	}
	ln.st.Delivered = 12
	ln.delivered(12)

	// an offer made under another version (the deliverer's own status
	// write renews the lane a moment later) is dropped but not lost: the
	// run that takes the inbox reads the log for it, even with events
	// held
	ev.log = append(ev.log, numbered(13, 14)...)
	ln.offer("1", numbered(13, 13))
	ln.offer("2", numbered(14, 14)) // the registry already has version 2
	ln.renew("1", "2")
	got, _ = d.pending(ctx, "s", ln, 20)
	if ev.reads != 3 || !slices.Equal(numbers(got), []int64{13, 14}) {
		t.Fatalf("after an offer under another version: %v after %d reads, want [13 14] after 3", numbers(got), ev.reads)
	}
}

// TestSyncedLaneReadsAfterAGapOnly: the lane of a subscription created
// just now reads nothing while its offers are all there is, counts what
// they brought, and once an offer went astray reads the log as any lane
// does, for good.
func TestSyncedLaneReadsAfterAGapOnly(t *testing.T) {
	ctx := context.Background()
	ev := &logEvents{}
	d := &deliverer{events: ev}
	ln := newLane(&Subscription{ID: "s", VersionID: "1"})

	got, _ := d.pending(ctx, "s", ln, 20)
	if ev.reads != 0 || len(got) != 0 {
		t.Fatalf("new lane: %v after %d reads, want nothing after none", numbers(got), ev.reads)
	}
	ev.log = numbered(1, 2)
	ln.offer("1", numbered(1, 2))
	got, _ = d.pending(ctx, "s", ln, 20)
	if ev.reads != 0 || !slices.Equal(numbers(got), []int64{1, 2}) || ln.last() != 2 {
		t.Fatalf("offered events: %v (last %d) after %d reads, want [1 2] (last 2) after none", numbers(got), ln.last(), ev.reads)
	}
	ln.st.Delivered = 2
	ln.delivered(2)
	if got, _ = d.pending(ctx, "s", ln, 20); ev.reads != 0 || len(got) != 0 {
		t.Fatalf("all delivered: %v after %d reads, want nothing after none", numbers(got), ev.reads)
	}

	ev.log = append(ev.log, numbered(3, 4)...)
	ln.offer("2", numbered(3, 3)) // under a version the lane is not of yet
	ln.renew("1", "2")
	ln.offer("2", numbered(4, 4))
	got, _ = d.pending(ctx, "s", ln, 20)
	if ev.reads != 1 || !slices.Equal(numbers(got), []int64{3, 4}) {
		t.Fatalf("after a missed offer: %v after %d reads, want [3 4] after 1", numbers(got), ev.reads)
	}
	if ln.synced {
		t.Fatal("the lane is still synced after a missed offer")
	}
	ln.st.Delivered = 4
	ln.delivered(4)
	if _, _ = d.pending(ctx, "s", ln, 20); ev.reads != 2 {
		t.Fatalf("an empty lane that missed an offer once: %d reads, want it to read again (2)", ev.reads)
	}
}

// TestPutCreatedFirst: a new lane is made only for an id the registry
// knows nothing of, by whichever of the write hook and the matcher files
// it first; an id put before (it may have matched already) or deleted
// does not get one.
func TestPutCreatedFirst(t *testing.T) {
	tp := topics.BuiltIn()[0]
	sub := func(id, version string) *Subscription {
		s := restHookSub(id, 0)
		s.VersionID, s.Status, s.Topic = version, StatusRequested, tp
		return s
	}
	r := newRegistry(delivery.NewSchedule())
	calls := 0
	first := func() { calls++ }

	r.putCreated(sub("new", "1"), 5, true, first)
	if calls != 1 {
		t.Fatalf("unknown id: first called %d times, want 1", calls)
	}
	r.put(sub("seen", "1"), 6) // the matcher met the version in the feed first
	r.putCreated(sub("seen", "1"), 6, true, first)
	r.drop("gone", "1")
	r.putCreated(sub("gone", "1"), 7, true, first)
	if calls != 1 {
		t.Errorf("first called %d times, want 1: not for an id put or deleted before", calls)
	}
	if _, ok := r.get("seen"); !ok {
		t.Error("putCreated with first left out the subscription")
	}
	if !r.putFirst(sub("fed", "1"), 8, first) || calls != 2 { // the matcher met it first
		t.Errorf("putFirst of an unknown id: first called %d times in all, want 2", calls)
	}
	r.putCreated(sub("fed", "1"), 8, true, first) // then the write hook
	if calls != 2 {
		t.Errorf("first called %d times in all, want 2: not again for the hook after the matcher", calls)
	}
}
