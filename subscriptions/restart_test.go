package subscriptions_test

import (
	"context"
	"maps"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/fhirsub/fhirsub/fhirstore"
	"github.com/fhirsub/fhirsub/fhirstore/sqlite"
)

// TestRestartLosesNothing writes while the Manager runs, restarts it in
// the middle of the flow, writes while it is down, and checks that the
// receiver ends up with every event exactly once after deduplicating by
// event number, numbered without gaps.
func TestRestartLosesNothing(t *testing.T) {
	rcv := newReceiver(t)
	e := newEnv(t)
	sub := topicSub(rcv.srv.URL, resultTopic, "id-only", "Observation?patient=Patient/p1")
	id := e.mustDo(201, "POST", "/Subscription", sub)["id"].(string)
	e.waitStatus(id, "active")

	var want []string
	write := func(n int) {
		for range n {
			obs := e.mustDo(201, "POST", "/Observation", observation("p1", "final"))
			want = append(want, e.url+"/Observation/"+obs["id"].(string))
		}
	}
	write(10)
	e.restart() // in the middle: some of the 10 may not be matched or delivered yet
	write(5)

	// down: writes land in the store while no Manager runs
	e.stop()
	db, err := sqlite.Open(context.Background(), sqlite.Config{Path: e.path})
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		res, err := db.Create(context.Background(), observation("p1", "final"))
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, e.url+"/Observation/"+res.ID)
	}
	_ = db.Close()
	e.start()
	write(5)

	byNumber := map[int]string{}
	deadline := time.Now().Add(15 * time.Second)
	for len(byNumber) < len(want) && time.Now().Before(deadline) {
		collect(t, rcv.matching(forSub(t, id, "event-notification")), byNumber)
		time.Sleep(20 * time.Millisecond)
	}
	if len(byNumber) != len(want) {
		t.Fatalf("%d distinct event numbers, want %d", len(byNumber), len(want))
	}
	for i, focus := range want {
		if byNumber[i+1] != focus {
			t.Errorf("event %d is %s, want %s", i+1, byNumber[i+1], focus)
		}
	}
	st := e.mustDo(200, "GET", "/Subscription/"+id+"/$status", nil)
	if c := param(t, st, "events-since-subscription-start"); c != strconv.Itoa(len(want)) {
		t.Errorf("events-since-subscription-start %v, want %d", c, len(want))
	}
}

// collect maps event numbers to their focus, failing on a number seen with
// two different foci (a duplicate event).
func collect(t *testing.T, got []received, byNumber map[int]string) {
	t.Helper()
	for _, n := range got {
		for s, focus := range eventFoci(t, n.JSON) {
			k, _ := strconv.Atoi(s)
			if prev, ok := byNumber[k]; ok && prev != focus {
				t.Fatalf("event %d delivered with two foci: %s and %s", k, prev, focus)
			}
			byNumber[k] = focus
		}
	}
}

// TestRestartMatchesNoChangeBeforeASubscription: when the process stops
// after a Subscription is committed and before the matcher reaches it,
// the changes before it that the stored cursor had not passed (those that
// matched nothing are stored lazily) are processed again at start, with
// the subscription loaded from the store. They must not match it: it did
// not exist when they were made. Here the writes are made while no
// Manager runs, which leaves the store as such a stop would.
func TestRestartMatchesNoChangeBeforeASubscription(t *testing.T) {
	ctx := context.Background()
	rcv := newReceiver(t)
	e := newEnv(t)
	e.stop()
	db, err := sqlite.Open(ctx, sqlite.Config{Path: e.path})
	if err != nil {
		t.Fatal(err)
	}
	early, err := db.Create(ctx, observation("p1", "final"))
	if err != nil {
		t.Fatal(err)
	}
	// more Subscription changes than a page (fhirstore.MaxCount) before
	// the subscription, so that its creation is not on the first page of
	// the start's read: another subscription written that often, then
	// deleted
	other, err := db.Create(ctx, topicSub(rcv.srv.URL, resultTopic, "id-only", "Observation?patient=Patient/p2"))
	if err != nil {
		t.Fatal(err)
	}
	for range fhirstore.MaxCount - 1 {
		if _, _, err := db.Update(ctx, other.ID, topicSub(rcv.srv.URL, resultTopic, "id-only", "Observation?patient=Patient/p2"), fhirstore.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Delete(ctx, "Subscription", other.ID, fhirstore.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	sub, err := db.Create(ctx, topicSub(rcv.srv.URL, resultTopic, "id-only", "Observation?patient=Patient/p1"))
	if err != nil {
		t.Fatal(err)
	}
	_ = db.Close()
	e.start()
	late := e.mustDo(201, "POST", "/Observation", observation("p1", "final"))
	lateURL := e.url + "/Observation/" + late["id"].(string)

	// Events are numbered in the feed's order: had the early change
	// matched, it would be event 1 and the late one event 2.
	byNumber := map[int]string{}
	deadline := time.Now().Add(15 * time.Second)
	for !slices.Contains(slices.Collect(maps.Values(byNumber)), lateURL) && time.Now().Before(deadline) {
		collect(t, rcv.matching(forSub(t, sub.ID, "event-notification")), byNumber)
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("events of Subscription/%s by number: %v (the early Observation is %s)", sub.ID, byNumber, early.ID)
	if byNumber[1] != lateURL {
		t.Fatalf("event 1 is %q, want the Observation written after the subscription, %s", byNumber[1], lateURL)
	}
	if len(byNumber) != 1 {
		t.Errorf("%d events, want 1: the Observation written before the subscription matched it", len(byNumber))
	}
}
