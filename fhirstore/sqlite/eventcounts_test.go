package sqlite

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/fhirsub/fhirsub/fhirstore"
)

func openExclusive(t *testing.T, path string) *DB {
	t.Helper()
	db, err := Open(context.Background(), Config{Path: path, Exclusive: true})
	if err != nil {
		t.Fatalf("Open %s: %v", path, err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func countMatch(sub, id string) fhirstore.Match {
	return fhirstore.Match{SubscriptionID: sub, Type: "Observation", ID: id, VersionID: "1",
		Interaction: fhirstore.InteractionCreate}
}

// recordOne records one event of sub for seq and returns its number.
func recordOne(t *testing.T, db *DB, seq int64, sub string) int64 {
	t.Helper()
	evs, err := db.Record(context.Background(), "matcher", seq, time.Now(), []fhirstore.Match{countMatch(sub, "o")})
	if err != nil || len(evs) != 1 {
		t.Fatalf("Record seq %d for %s: %v %v", seq, sub, evs, err)
	}
	return evs[0].Number
}

func eventCount(t *testing.T, db *DB, sub string) int64 {
	t.Helper()
	st, err := db.State(context.Background(), sub)
	if err != nil {
		t.Fatalf("State %s: %v", sub, err)
	}
	return st.EventCount
}

// TestEventNumbersSurviveRollback: numbers counted in memory by a write
// that is then rolled back (alone, or to its savepoint in a batch) are
// not used: the next event takes the next number the store holds, with
// no gap.
func TestEventNumbersSurviveRollback(t *testing.T) {
	db := openExclusive(t, filepath.Join(t.TempDir(), "fhir.db"))
	ctx := context.Background()
	if n := recordOne(t, db, 1, "a"); n != 1 {
		t.Fatalf("first event numbered %d", n)
	}
	boom := errors.New("boom")
	failing := func(seq int64) *request {
		return &request{ctx: ctx, done: make(chan struct{}), fn: func(ctx context.Context, tx *wtx) error {
			if _, err := db.record(ctx, tx, "matcher", seq, 0, []fhirstore.Match{countMatch("a", "x")}); err != nil {
				return err
			}
			return boom
		}}
	}
	// alone: the transaction is rolled back
	if err := db.writeFunc(ctx, failing(2).fn); !errors.Is(err, boom) {
		t.Fatalf("failing write: %v", err)
	}
	if n := recordOne(t, db, 2, "a"); n != 2 {
		t.Fatalf("after a rolled-back transaction the event is numbered %d, want 2", n)
	}
	// in a batch: rolled back to its savepoint, the other request commits
	ok := &request{ctx: ctx, done: make(chan struct{}), fn: func(ctx context.Context, tx *wtx) error {
		_, err := db.record(ctx, tx, "other", 3, 0, []fhirstore.Match{countMatch("b", "y")})
		return err
	}}
	bad := failing(3)
	db.wmu.Lock()
	db.commit([]*request{ok, bad})
	db.wmu.Unlock()
	if ok.err != nil || !errors.Is(bad.err, boom) {
		t.Fatalf("batch: ok %v, failing %v", ok.err, bad.err)
	}
	if n := recordOne(t, db, 3, "a"); n != 3 {
		t.Fatalf("after a savepoint rolled back the event is numbered %d, want 3", n)
	}
	if c := eventCount(t, db, "a"); c != 3 {
		t.Fatalf("EventCount of a = %d, want 3", c)
	}
	if c := eventCount(t, db, "b"); c != 1 {
		t.Fatalf("EventCount of b = %d, want 1", c)
	}
}

// TestNumberingAfterPruneAndReopen: with every event delivered and
// pruned, the count and the numbering go on, also in a process that
// opens the file again (nothing in memory).
func TestNumberingAfterPruneAndReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fhir.db")
	ctx := context.Background()
	db := openExclusive(t, path)
	for seq := int64(1); seq <= 3; seq++ {
		recordOne(t, db, seq, "a")
	}
	if err := db.SaveDelivery(ctx, fhirstore.SubscriptionState{SubscriptionID: "a", Delivered: 3}); err != nil {
		t.Fatal(err)
	}
	if err := db.Prune(ctx, "a", 0); err != nil {
		t.Fatal(err)
	}
	if evs, err := db.Events(ctx, "a", 1, 0, 0); err != nil || len(evs) != 0 {
		t.Fatalf("events after pruning all: %v %v", evs, err)
	}
	if c := eventCount(t, db, "a"); c != 3 {
		t.Fatalf("EventCount after pruning all = %d, want 3", c)
	}
	if n := recordOne(t, db, 4, "a"); n != 4 {
		t.Fatalf("event after pruning all numbered %d, want 4", n)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openExclusive(t, path)
	if c := eventCount(t, db, "a"); c != 4 {
		t.Fatalf("EventCount after reopening = %d, want 4", c)
	}
	if n := recordOne(t, db, 5, "a"); n != 5 {
		t.Fatalf("event after reopening numbered %d, want 5", n)
	}
	if err := db.DropSubscription(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if n := recordOne(t, db, 6, "a"); n != 1 {
		t.Fatalf("event after DropSubscription numbered %d, want 1", n)
	}
}
