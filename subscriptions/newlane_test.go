package subscriptions_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/fhirsub/fhirsub/fhirstore"
	"github.com/fhirsub/fhirsub/fhirstore/sqlite"
	"github.com/fhirsub/fhirsub/subscriptions"
)

// readCounter is the store's event log with its reads of one
// subscription's delivery state and events counted.
type readCounter struct {
	*sqlite.DB
	mu             sync.Mutex
	states, events map[string]int
}

func (r *readCounter) State(ctx context.Context, id string) (fhirstore.SubscriptionState, error) {
	r.mu.Lock()
	r.states[id]++
	r.mu.Unlock()
	return r.DB.State(ctx, id)
}

func (r *readCounter) Events(ctx context.Context, id string, from, to int64, limit int) ([]fhirstore.Event, error) {
	r.mu.Lock()
	r.events[id]++
	r.mu.Unlock()
	return r.DB.Events(ctx, id, from, to, limit)
}

func (r *readCounter) reads(id string) (states, events int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.states[id], r.events[id]
}

// TestNewSubscriptionReadsNothingBack: a subscription created through the
// API has no delivery state and no event yet, so its handshake, its
// activation and its first events go out without reading either back
// from the store, the event recorded while its handshake was failing
// included, which the handshake counts and the first notification
// carries.
func TestNewSubscriptionReadsNothingBack(t *testing.T) {
	var rc *readCounter
	rcv := newReceiver(t)
	e := newEnvWrapped(t, func(db *sqlite.DB) fhirstore.EventStore {
		rc = &readCounter{DB: db, states: map[string]int{}, events: map[string]int{}}
		return rc
	}, func(c *subscriptions.Config) { c.MaxFailures = 1000 })

	rcv.status.Store(503) // the handshake fails until the event is recorded
	id := e.mustDo(201, "POST", "/Subscription", topicSub(rcv.srv.URL, resultTopic, "id-only", "Observation?patient=Patient/p1"))["id"].(string)
	for deadline := time.Now().Add(15 * time.Second); rcv.failures() == 0; {
		if time.Now().After(deadline) {
			t.Fatal("no handshake attempt")
		}
		time.Sleep(5 * time.Millisecond)
	}
	e.mustDo(201, "POST", "/Observation", observation("p1", "final"))
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		evs, err := e.db.Events(context.Background(), id, 1, 0, 10) // the store itself, not counted
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the event of the requested subscription was not recorded")
		}
	}
	rcv.status.Store(200)

	hs := rcv.waitFor("handshake", forSub(t, id, "handshake"))
	got := rcv.waitEvents(id, 1)
	states, events := rc.reads(id)
	t.Logf("Subscription/%s: %d failed handshake(s), then handshake counting %v, event notification %v; store reads: %d of its state, %d of its events",
		id, rcv.failures(), param(t, hs.JSON, "events-since-subscription-start"), eventNumbers(t, got[0].JSON), states, events)
	if n := param(t, hs.JSON, "events-since-subscription-start"); n != "1" {
		t.Errorf("handshake events-since-subscription-start %v, want \"1\" (the event recorded while requested)", n)
	}
	if nums := eventNumbers(t, got[0].JSON); len(nums) != 1 || nums[0] != "1" {
		t.Errorf("first notification carries events %v, want [1]", nums)
	}
	if states != 0 || events != 0 {
		t.Errorf("a new subscription's delivery read its state %d and its events %d time(s) back, want 0 and 0", states, events)
	}
	e.waitStatus(id, "active")
}
