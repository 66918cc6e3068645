package sqlite

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// TestWriteTransactionBoundaries: a request of a group commit runs inside
// the writer's transaction (SQLite refuses a BEGIN there), and after a
// commit, a rolled-back request and a batch with a failing request the
// writer's connection is outside any transaction again (a BEGIN works).
func TestWriteTransactionBoundaries(t *testing.T) {
	db := openExclusive(t, filepath.Join(t.TempDir(), "fhir.db"))
	ctx := context.Background()
	insideTx := func(ctx context.Context, tx *wtx) error {
		_, err := tx.ExecContext(ctx, "BEGIN")
		if err == nil || !strings.Contains(err.Error(), "within a transaction") {
			return errors.New("a BEGIN inside the request's transaction did not fail as nested: " + errText(err))
		}
		return nil
	}
	outsideTx := func(when string) {
		t.Helper()
		db.wmu.Lock()
		defer db.wmu.Unlock()
		if _, err := db.wconn.ExecContext(ctx, "BEGIN"); err != nil {
			t.Fatalf("%s: the writer is still inside a transaction: %v", when, err)
		}
		if _, err := db.wconn.ExecContext(ctx, "ROLLBACK"); err != nil {
			t.Fatalf("%s: rollback of the probe: %v", when, err)
		}
	}

	if err := db.writeFunc(ctx, insideTx); err != nil {
		t.Fatal(err)
	}
	outsideTx("after a commit")

	boom := errors.New("boom")
	if err := db.writeFunc(ctx, func(ctx context.Context, tx *wtx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO claims (key, id, time) VALUES ('k', 'a', 1)`); err != nil {
			return err
		}
		return boom
	}); !errors.Is(err, boom) {
		t.Fatalf("failing request: %v", err)
	}
	outsideTx("after a rolled-back request")
	var n int
	if err := db.wconn.QueryRowContext(ctx, `SELECT count(*) FROM claims`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("claims after the rollback: %d (%v), want 0", n, err)
	}

	ok := &request{ctx: ctx, done: make(chan struct{}), fn: insideTx}
	bad := &request{ctx: ctx, done: make(chan struct{}), fn: func(context.Context, *wtx) error { return boom }}
	db.wmu.Lock()
	db.commit([]*request{ok, bad})
	db.wmu.Unlock()
	if ok.err != nil || !errors.Is(bad.err, boom) {
		t.Fatalf("batch: ok %v, failing %v", ok.err, bad.err)
	}
	outsideTx("after a batch with a failing request")
}

func errText(err error) string {
	if err == nil {
		return "no error"
	}
	return err.Error()
}
