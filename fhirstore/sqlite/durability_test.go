package sqlite

import (
	"context"
	"path/filepath"
	"runtime"
	"testing"
)

// TestSyncFollowsTheBatch checks which commits fsync: a batch of event
// store writes alone commits with synchronous=NORMAL (1), a resource write
// with FULL (2), and with RelaxedSync everything with NORMAL.
func TestSyncFollowsTheBatch(t *testing.T) {
	for _, relaxed := range []bool{false, true} {
		ctx := context.Background()
		db, err := Open(ctx, Config{Path: filepath.Join(t.TempDir(), "fhir.db"), RelaxedSync: relaxed})
		if err != nil {
			t.Fatal(err)
		}
		inEventWrite := func() int {
			var mode int
			if err := db.writeFunc(ctx, func(ctx context.Context, tx *wtx) error {
				return tx.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&mode)
			}); err != nil {
				t.Fatal(err)
			}
			return mode
		}
		afterResourceWrite := func() int {
			if _, err := db.Create(ctx, map[string]any{"resourceType": "Patient"}); err != nil {
				t.Fatal(err)
			}
			db.wmu.Lock()
			defer db.wmu.Unlock()
			var mode int
			if err := db.wconn.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&mode); err != nil {
				t.Fatal(err)
			}
			return mode
		}
		wantResource := 2
		if relaxed {
			wantResource = 1
		}
		got := []int{inEventWrite(), afterResourceWrite(), inEventWrite(), afterResourceWrite()}
		t.Logf("relaxed=%v: synchronous in event write, after resource write, again: %v", relaxed, got)
		if want := []int{1, wantResource, 1, wantResource}; got[0] != want[0] || got[1] != want[1] || got[2] != want[2] || got[3] != want[3] {
			t.Errorf("relaxed=%v: synchronous modes %v, want %v", relaxed, got, want)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestDerivedWritesSkipTheResourceFsync queues a resource write and an
// event store write into one group commit: the event store write runs in
// its own transaction without an fsync (synchronous=NORMAL) instead of
// sharing the resource write's FULL commit.
func TestDerivedWritesSkipTheResourceFsync(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, Config{Path: filepath.Join(t.TempDir(), "fhir.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.wmu.Lock() // hold the leader back until both requests queued
	created := make(chan error, 1)
	go func() {
		_, err := db.Create(ctx, map[string]any{"resourceType": "Patient"})
		created <- err
	}()
	mode := make(chan int, 1)
	go func() {
		var m int
		err := db.writeFunc(ctx, func(ctx context.Context, tx *wtx) error {
			return tx.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&m)
		})
		if err != nil {
			t.Error(err)
		}
		mode <- m
	}()
	for {
		db.qmu.Lock()
		n := len(db.queue)
		db.qmu.Unlock()
		if n == 2 {
			break
		}
		runtime.Gosched()
	}
	db.wmu.Unlock()
	if err := <-created; err != nil {
		t.Fatal(err)
	}
	got := <-mode
	t.Logf("synchronous of an event store write queued with a resource write: %d", got)
	if got != 1 {
		t.Errorf("synchronous=%d in the event store write, want 1 (NORMAL, its own commit)", got)
	}
}
