package sqlite

import "fmt"

// Which commits wait for an fsync.
//
// A resource write is acknowledged (201) only once it survives a power
// loss: its commit runs with synchronous=FULL, which fsyncs the WAL. The
// event store's writes (events, cursors, delivery state, claims: every
// request that carries a function instead of resource entries) are
// derived from the change feed or only speed a later decision up; after a
// power loss they are recomputed (the matcher re-processes the changes
// after its cursor, idempotently) or cost a duplicate delivery, which
// rest-hook's at-least-once promise allows. A batch made only of them
// commits with synchronous=NORMAL, without an fsync of its own. In WAL
// mode the log is written in order, so the next FULL commit's fsync makes
// every earlier commit durable too: nothing derived outlives what it was
// derived from. (Measured with cmd/fhirsub-load's e2e scenario: an fsync
// per matcher commit put ~1% of notifications 120–170 ms late; without
// it the p99 from POST to notification is ~8 ms.)

// syncFor sets the writer's synchronous mode for batch: FULL when it holds
// a resource write (unless Config.RelaxedSync), NORMAL otherwise. Called
// by the group-commit leader with wmu held, outside any transaction.
//
// The PRAGMA is compiled on each switch, not prepared once: SQLite applies
// synchronous=… when the statement is compiled and running it again does
// nothing, so two statements prepared at open would leave the writer in
// the mode of the last one prepared (TestSyncFollowsTheBatch fails so).
func (db *DB) syncFor(batch []*request) error {
	relaxed := true
	if !db.cfg.RelaxedSync {
		for _, r := range batch {
			if r.fn == nil {
				relaxed = false
				break
			}
		}
	}
	if relaxed == db.relaxed {
		return nil
	}
	mode := "FULL"
	if relaxed {
		mode = "NORMAL"
	}
	if _, err := db.wconn.ExecContext(db.wctx, "PRAGMA synchronous = "+mode); err != nil {
		return fmt.Errorf("set synchronous=%s: %w", mode, err)
	}
	db.relaxed = relaxed
	return nil
}
