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
// the following write restarts the WAL. A background checkpoint that takes
// long (a loaded disk) would still let the WAL grow by every commit made
// meanwhile; past hardLag checkpoints' worth of commits the leader waits
// for it and finishes it (boundWAL): writes wait rather than the WAL grow.

const (
	// checkpointFrames is the WAL size, in frames, at which a checkpoint
	// is due: the 4,000 pages (16 MB) SQLite's automatic checkpoint was
	// set to. The writer cannot see the WAL's size, so the checkpointer
	// turns it into a number of commits (checkpointEvery) from the
	// frames per commit of the previous checkpoint: about 25 for a
	// single create, 65 for a group commit of 8.
	checkpointFrames = 4000
	// minEvery and maxEvery bound checkpointEvery; firstEvery is its
	// value until a checkpoint has measured the frames per commit.
	minEvery, maxEvery, firstEvery = 8, 256, 64
	// checkpointIdle is how long after its last checkpoint a DB with
	// fewer commits than checkpointEvery checkpoints them anyway.
	checkpointIdle = time.Second
	// hardLag bounds the WAL: when hardLag times checkpointEvery commits
	// were made since the last checkpoint began, the writer waits for it
	// and finishes it before it commits again (boundWAL).
	hardLag = 3
)

// committed counts a commit for the checkpointer and kicks it when
// checkpointEvery commits were made since the last checkpoint began.
// Called by the group-commit leader.
func (db *DB) committed() {
	if db.commits.Add(1)-db.ckptAt.Load() >= db.ckptEvery.Load() {
		select {
		case db.kick <- struct{}{}:
		default: // a checkpoint is already due
		}
	}
}

// checkpoint runs until Close: a PASSIVE checkpoint when committed kicks
// it, and one checkpointIdle after the last if commits came since.
func (db *DB) checkpoint() {
	defer db.wg.Done()
	t := time.NewTicker(checkpointIdle)
	defer t.Stop()
	for {
		select {
		case <-db.quit:
			return
		case <-db.kick:
		case <-t.C:
		}
		n, done := db.commits.Load(), db.ckptAt.Load()
		if n == done {
			continue
		}
		db.ckptAt.Store(n)
		var busy, log, moved sql.NullInt64
		ended := db.checkpointing()
		err := db.ckpt.QueryRowContext(db.ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &log, &moved)
		ended()
		if err != nil {
			if db.ctx.Err() == nil {
				db.log.Warn("wal checkpoint", "err", err)
			}
			continue
		}
		db.log.Debug("wal checkpoint", "wal_frames", log.Int64, "checkpointed", moved.Int64)
		if log.Int64 > 0 {
			// The WAL restarted at the last checkpoint, so its frames
			// are those of the n-done commits since.
			every := uint64(checkpointFrames) * (n - done) / uint64(log.Int64)
			db.ckptEvery.Store(min(max(every, minEvery), maxEvery))
		}
		// The figures are of the WAL as it was when the checkpoint
		// began: commits made since are not in them, nor copied.
		if busy.Int64 != 0 || moved.Int64 < log.Int64 || db.commits.Load() != n {
			db.finish.Store(true)
		}
	}
}

// checkpointing marks a background checkpoint as running until the
// returned func is called.
func (db *DB) checkpointing() func() {
	ch := make(chan struct{})
	db.ckptMu.Lock()
	db.ckptRun = ch
	db.ckptMu.Unlock()
	return func() {
		db.ckptMu.Lock()
		db.ckptRun = nil
		db.ckptMu.Unlock()
		close(ch)
	}
}

// boundWAL keeps the WAL within about hardLag checkpoints' worth of
// frames. A background checkpoint slowed down (by a loaded disk, say)
// lets the commits made meanwhile pile up in the WAL; past hardLag times
// checkpointEvery commits since it began, the writer waits for it to end
// and then finishes it (finishCheckpoint), so that the WAL restarts. It
// reports whether it did. Called by the group-commit leader with wmu
// held: the writes wait.
func (db *DB) boundWAL() bool {
	if db.commits.Load()-db.ckptAt.Load() < hardLag*db.ckptEvery.Load() {
		return false
	}
	db.ckptMu.Lock()
	running := db.ckptRun
	db.ckptMu.Unlock()
	if running != nil {
		select {
		case <-running:
		case <-db.quit:
			return false
		}
	}
	db.finish.Store(true)
	return true
}

// finishCheckpoint copies the frames the last background checkpoint left,
// if it left any. Called by the group-commit leader with wmu held, after
// its batch was answered and outside any transaction. A checkpoint that
// boundWAL forced counts as the last one: no commit comes between it and
// the count it records.
func (db *DB) finishCheckpoint() {
	began := time.Now()
	forced := db.boundWAL()
	if !db.finish.CompareAndSwap(true, false) || db.closed() {
		return
	}
	if db.cfg.Observe != nil {
		defer func() { db.cfg.Observe(WriterWork{Kind: WorkCheckpoint, Took: time.Since(began)}) }()
	}
	if _, err := db.wconn.ExecContext(db.ctx, "PRAGMA wal_checkpoint(PASSIVE)"); err != nil {
		if db.ctx.Err() == nil {
			db.log.Warn("wal checkpoint (writer)", "err", err)
		}
		return
	}
	if forced {
		db.ckptAt.Store(db.commits.Load())
	}
}
