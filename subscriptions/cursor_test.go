package subscriptions_test

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fhirsub/fhirsub/channels"
	"github.com/fhirsub/fhirsub/fhirstore"
	"github.com/fhirsub/fhirsub/fhirstore/sqlite"
	"github.com/fhirsub/fhirsub/subscriptions"
)

// countingEvents counts the Record calls (write transactions) of the
// matcher.
type countingEvents struct {
	fhirstore.EventStore
	records atomic.Int64
}

func (c *countingEvents) Record(ctx context.Context, cursor string, seq int64, at time.Time, ms []fhirstore.Match) ([]fhirstore.Event, error) {
	c.records.Add(1)
	return c.EventStore.Record(ctx, cursor, seq, at, ms)
}

// TestCursorSavedPerBatch writes changes nobody is subscribed to and
// checks that the matcher does not write its cursor once per change, that
// the cursor is at the end of the feed after Shutdown, and that a restart
// processes none of them again.
func TestCursorSavedPerBatch(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "fhir.db")
	start := func() (*sqlite.DB, *countingEvents, *subscriptions.Manager) {
		db, err := sqlite.Open(ctx, sqlite.Config{Path: path, PollInterval: 20 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		ev := &countingEvents{EventStore: db}
		m, err := subscriptions.New(subscriptions.Config{Store: db, Events: ev, BaseURL: "http://127.0.0.1/fhir",
			ValidateEndpoint: channels.ValidateEndpoint, PollInterval: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Run(ctx); err != nil {
			t.Fatal(err)
		}
		return db, ev, m
	}
	stop := func(db *sqlite.DB, m *subscriptions.Manager) {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := m.Shutdown(sctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	}

	db, ev, m := start()
	const n = 100
	for range n {
		if _, err := db.Create(ctx, map[string]any{"resourceType": "Patient", "active": true}); err != nil {
			t.Fatal(err)
		}
	}
	last, err := db.LastSeq(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waitStats(t, m, "the patients to be processed", func(s subscriptions.Stats) bool { return s.ChangesProcessed >= last })
	stop(db, m)
	records := ev.records.Load()
	cursor, err := db.Cursor(ctx, "matcher")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d changes (%d unmatched patients): %d cursor/event writes; cursor %d after shutdown, feed at %d", last, n, records, cursor, last)
	if records > n/4 {
		t.Errorf("%d cursor/event writes for %d changes that match nothing, want a few (one per batch and per topic change)", records, last)
	}
	if cursor != last {
		t.Errorf("cursor %d after shutdown, want the end of the feed %d", cursor, last)
	}
	_ = db.Close()

	db, _, m = start()
	if _, err := db.Create(ctx, map[string]any{"resourceType": "Patient", "active": true}); err != nil {
		t.Fatal(err)
	}
	s := waitStats(t, m, "the marker patient", func(s subscriptions.Stats) bool { return s.ChangesProcessed >= 1 })
	t.Logf("after restart: %d changes processed (the marker only)", s.ChangesProcessed)
	if s.ChangesProcessed != 1 {
		t.Errorf("%d changes processed after restart, want 1 (the marker): the cursor was behind", s.ChangesProcessed)
	}
	stop(db, m)
	_ = db.Close()
}
