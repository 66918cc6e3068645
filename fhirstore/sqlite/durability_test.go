package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
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
			if err := db.writeFunc(ctx, func(ctx context.Context, tx *sql.Tx) error {
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
			if err := db.writer.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&mode); err != nil {
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
