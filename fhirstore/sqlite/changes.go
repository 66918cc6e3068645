package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"time"

	"github.com/fhirsub/fhirsub/fhirstore"
)

// DefaultChangesLimit is the number of changes Changes returns when asked
// for limit <= 0.
const DefaultChangesLimit = 1000

// Changes returns up to limit changes with Seq > after, in Seq order.
func (db *DB) Changes(ctx context.Context, after int64, limit int) ([]fhirstore.Change, error) {
	if limit <= 0 {
		limit = DefaultChangesLimit
	}
	if db.cfg.Exclusive { // every commit is this process's: the head is in memory
		// Caught up: seen is the last seq committed (commit advances it
		// after remembering the changes, before answering the writers),
		// so there is nothing to read. A change committed and not yet
		// advanced is found after the Wait that its advance ends. The
		// matcher asks this after every batch it handles, and the query
		// it made (a read transaction after a commit, which drops the
		// reader's page cache and its file mapping) was 5% of the CPU
		// under creates.
		if after >= db.seen.Load() {
			return nil, nil
		}
		if cs, ok := db.recent.after(after, limit); ok {
			return cs, nil
		}
	}
	rows, err := db.rstmts.changes.QueryContext(ctx, after, limit)
	if err != nil {
		return nil, fmt.Errorf("read changes: %w", err)
	}
	return scanChanges(rows)
}

// TypeChanges returns up to limit changes of resources of type typ with
// Seq > after, in Seq order (index changes_type_seq). Writes are
// serialised and each takes the next seq, so it never misses a change
// that commits later below one it returned.
func (db *DB) TypeChanges(ctx context.Context, typ string, after int64, limit int) ([]fhirstore.Change, error) {
	if limit <= 0 {
		limit = DefaultChangesLimit
	}
	rows, err := db.rstmts.typeChanges.QueryContext(ctx, typ, after, limit)
	if err != nil {
		return nil, fmt.Errorf("read %s changes: %w", typ, err)
	}
	return scanChanges(rows)
}

// changeColumns are the columns of changes that scanChanges reads, in
// its order.
const changeColumns = `seq, type, id, version, prev_version, interaction, time`

// scanChanges reads and closes rows of changeColumns.
func scanChanges(rows *sql.Rows) ([]fhirstore.Change, error) {
	defer rows.Close()
	var out []fhirstore.Change
	for rows.Next() {
		var (
			c       fhirstore.Change
			version int64
			prev    sql.NullInt64
			inter   string
			ms      int64
		)
		if err := rows.Scan(&c.Seq, &c.Type, &c.ID, &version, &prev, &inter, &ms); err != nil {
			return nil, fmt.Errorf("read changes: %w", err)
		}
		c.VersionID = strconv.FormatInt(version, 10)
		if prev.Valid {
			c.PreviousVersionID = strconv.FormatInt(prev.Int64, 10)
		}
		c.Interaction = fhirstore.Interaction(inter)
		c.Time = time.UnixMilli(ms).UTC()
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read changes: %w", err)
	}
	return out, nil
}

// LastSeq returns the highest committed seq, 0 when the feed is empty.
func (db *DB) LastSeq(ctx context.Context) (int64, error) {
	if db.cfg.Exclusive {
		// Every commit is this process's, and commit advances seen
		// before it answers the writer.
		return db.seen.Load(), nil
	}
	return db.storedLastSeq(ctx)
}

// storedLastSeq reads the highest committed seq from the database.
func (db *DB) storedLastSeq(ctx context.Context) (int64, error) {
	var last sql.NullInt64
	if err := db.rstmts.lastSeq.QueryRowContext(ctx).Scan(&last); err != nil {
		return 0, fmt.Errorf("read last seq: %w", err)
	}
	return last.Int64, nil
}

// Wait blocks until a change with Seq > after is committed, ctx is done
// (ctx.Err()) or the DB is closed (fhirstore.ErrClosed). Commits made
// through this DB wake it at once; other processes' commits within
// Config.PollInterval.
func (db *DB) Wait(ctx context.Context, after int64) error {
	if db.closed() {
		return fhirstore.ErrClosed
	}
	if db.seen.Load() <= after {
		// Catch up with other processes before blocking.
		last, err := db.LastSeq(ctx)
		if err != nil {
			return err
		}
		db.advance(last)
	}
	for {
		ch := db.notify.C()
		if db.seen.Load() > after {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-db.quit:
			return fhirstore.ErrClosed
		}
	}
}

// advance records that seq is committed and wakes the waiters if that is
// news.
func (db *DB) advance(seq int64) {
	for {
		seen := db.seen.Load()
		if seq <= seen {
			return
		}
		if db.seen.CompareAndSwap(seen, seq) {
			db.notify.Notify()
			return
		}
	}
}

// poll runs until Close and publishes commits made by other processes.
func (db *DB) poll() {
	defer db.wg.Done()
	t := time.NewTicker(db.cfg.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-db.quit:
			return
		case <-t.C:
		}
		last, err := db.LastSeq(db.ctx)
		if err != nil {
			if db.ctx.Err() == nil {
				db.log.Warn("poll change feed", "err", err)
			}
			continue
		}
		db.advance(last)
	}
}
