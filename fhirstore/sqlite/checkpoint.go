package sqlite

import (
	"database/sql"
	"time"
)

// Checkpoints copy the WAL back into the database file. SQLite's automatic
// checkpoint would run one inside the commit that crosses its threshold,
// on the writer connection and so under the write lock: every write queued
// behind that commit waited for thousands of page copies and two fsyncs.
// The writer runs with wal_autocheckpoint(0) instead, and the DB's
// checkpointer goroutine runs PASSIVE checkpoints on a connection of its
// own, which take no write lock: commits go on while it copies.
//
// A checkpoint that ran beside commits leaves their frames uncopied, and
// SQLite restarts the WAL from its beginning only after a checkpoint that
// copied every frame: without more, the WAL would grow without bound. So
// when the background checkpoint ends behind, the next group-commit leader
// finishes it on the writer connection, between two batches
// (finishCheckpoint): it copies only the frames committed meanwhile, and
// the following write restarts the WAL.

const (
	// checkpointEvery is how many commits are made between two
	// checkpoints under load: at ~25 WAL frames per single create and
	// ~65 per group commit of 8, about 1,600–4,200 frames, around the
	// 4,000 SQLite's automatic checkpoint was set to.
	checkpointEvery = 64
	// checkpointIdle is how long after its last checkpoint a DB with
	// fewer commits than checkpointEvery checkpoints them anyway.
	checkpointIdle = time.Second
)

// committed counts a commit for the checkpointer and kicks it every
// checkpointEvery commits. Called by the group-commit leader.
func (db *DB) committed() {
	if db.commits.Add(1)%checkpointEvery == 0 {
		select {
		case db.kick <- struct{}{}:
		default: // a checkpoint is already due
		}
	}
}

// checkpoint runs until Close: a PASSIVE checkpoint every checkpointEvery
// commits, and one checkpointIdle after the last if commits came since.
func (db *DB) checkpoint() {
	defer db.wg.Done()
	t := time.NewTicker(checkpointIdle)
	defer t.Stop()
	var done uint64 // commits covered by the last checkpoint
	for {
		select {
		case <-db.quit:
			return
		case <-db.kick:
		case <-t.C:
		}
		n := db.commits.Load()
		if n == done {
			continue
		}
		done = n
		var busy, log, moved sql.NullInt64
		err := db.ckpt.QueryRowContext(db.ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &log, &moved)
		if err != nil {
			if db.ctx.Err() == nil {
				db.log.Warn("wal checkpoint", "err", err)
			}
			continue
		}
		db.log.Debug("wal checkpoint", "wal_frames", log.Int64, "checkpointed", moved.Int64)
		// The figures are of the WAL as it was when the checkpoint
		// began: commits made since are not in them, nor copied.
		if busy.Int64 != 0 || moved.Int64 < log.Int64 || db.commits.Load() != n {
			db.finish.Store(true)
		}
	}
}

// finishCheckpoint copies the frames the last background checkpoint left,
// if it left any. Called by the group-commit leader with wmu held, after
// its batch was answered and outside any transaction.
func (db *DB) finishCheckpoint() {
	if !db.finish.CompareAndSwap(true, false) || db.closed() {
		return
	}
	if _, err := db.writer.ExecContext(db.ctx, "PRAGMA wal_checkpoint(PASSIVE)"); err != nil && db.ctx.Err() == nil {
		db.log.Warn("wal checkpoint (writer)", "err", err)
	}
}
