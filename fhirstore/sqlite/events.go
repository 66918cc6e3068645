package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/fhirsub/fhirsub/fhirstore"
)

// The event store lives in the same file as the resources (tables cursors,
// subscription_state and subscription_events, migration 0002) and its
// writes join the group commit of resource writes (see DB.submit): a
// Record, the SaveDelivery calls of concurrent deliverers and concurrent
// resource writes share one SQLite transaction, each in its own savepoint,
// and each caller returns after the commit that made its write durable.

var _ fhirstore.EventStore = (*DB)(nil)

// eventStmts are the statements of the event store's write path, prepared
// once on the writer connection and used under the write lock only.
type eventStmts struct {
	getCursor  *sql.Stmt
	putCursor  *sql.Stmt
	seqEvents  *sql.Stmt
	bumpCount  *sql.Stmt
	keepCount  *sql.Stmt
	insEvent   *sql.Stmt
	saveState  *sql.Stmt
	pruneEv    *sql.Stmt
	dropEvents *sql.Stmt
	dropState  *sql.Stmt

	// read statements, prepared on the reader pool at first use
	readOnce   sync.Once
	readErr    error
	readState  *sql.Stmt
	readEvents *sql.Stmt
}

const (
	stateQuery = `SELECT ` + stateColumns + ` FROM subscription_state WHERE subscription_id = ?`
	eventQuery = `SELECT ` + eventColumns + ` FROM subscription_events
		WHERE subscription_id = ? AND number >= ? AND number <= ? ORDER BY number LIMIT ?`
)

// reads returns the prepared read statements (State, Events): a pool
// statement is prepared once per reader connection and then reused, which
// spares the SQL parse of every call.
func (db *DB) reads() (*eventStmts, error) {
	s := &db.evStmts
	s.readOnce.Do(func() {
		if s.readState, s.readErr = db.reader.PrepareContext(db.ctx, stateQuery); s.readErr != nil {
			return
		}
		s.readEvents, s.readErr = db.reader.PrepareContext(db.ctx, eventQuery)
	})
	if s.readErr != nil {
		return nil, fmt.Errorf("prepare event reads: %w", s.readErr)
	}
	return s, nil
}

const eventColumns = `subscription_id, number, change_seq, topic, type, id, version_id, interaction, time`

func (s *eventStmts) prepare(ctx context.Context, c *sql.Conn) error {
	return prepareAll(ctx, c.PrepareContext, []stmtSQL{
		{&s.getCursor, `SELECT seq FROM cursors WHERE name = ?`},
		{&s.putCursor, `INSERT INTO cursors (name, seq) VALUES (?, ?)
			ON CONFLICT (name) DO UPDATE SET seq = max(seq, excluded.seq)`},
		{&s.seqEvents, `SELECT ` + eventColumns + ` FROM subscription_events
			WHERE change_seq = ? ORDER BY subscription_id`},
		// the count from the store: event_count is a lower bound
		// (eventcounts.go), so it is raised to the last number first
		{&s.bumpCount, `INSERT INTO subscription_state (subscription_id, event_count)
			VALUES (?1, ifnull((SELECT max(number) FROM subscription_events WHERE subscription_id = ?1), 0) + 1)
			ON CONFLICT (subscription_id) DO UPDATE SET event_count = ` + lastNumber + ` + 1
			RETURNING event_count`},
		{&s.insEvent, `INSERT INTO subscription_events (` + eventColumns + `)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`},
		{&s.saveState, `INSERT INTO subscription_state (subscription_id, delivered, failures,
			last_error, last_attempt, last_success, next_attempt) VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (subscription_id) DO UPDATE SET delivered = max(delivered, excluded.delivered),
			failures = excluded.failures, last_error = excluded.last_error,
			last_attempt = excluded.last_attempt, last_success = excluded.last_success,
			next_attempt = excluded.next_attempt`},
		{&s.keepCount, `UPDATE subscription_state SET event_count = ` + lastNumber + `
			WHERE subscription_id = ?`},
		{&s.pruneEv, `DELETE FROM subscription_events WHERE subscription_id = ?
			AND number <= (SELECT delivered FROM subscription_state WHERE subscription_id = ?) - ?`},
		{&s.dropEvents, `DELETE FROM subscription_events WHERE subscription_id = ?`},
		{&s.dropState, `DELETE FROM subscription_state WHERE subscription_id = ?`},
	})
}

func (s *eventStmts) close() {
	closeAll(s.getCursor, s.putCursor, s.seqEvents, s.bumpCount, s.keepCount,
		s.insEvent, s.saveState, s.pruneEv, s.dropEvents, s.dropState, s.readState, s.readEvents)
}

// Cursor returns the last change seq the named consumer has processed, 0
// when it never ran.
func (db *DB) Cursor(ctx context.Context, name string) (int64, error) {
	if db.closed() {
		return 0, fhirstore.ErrClosed
	}
	var seq int64
	err := db.reader.QueryRowContext(ctx, `SELECT seq FROM cursors WHERE name = ?`, name).Scan(&seq)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("read cursor %q: %w", name, err)
	}
	return seq, nil
}

// Record appends one event per match and moves the cursor to seq in one
// transaction. A cursor already at or past seq makes it a replay: nothing
// is written and the events recorded for seq are returned, ordered by
// subscription id. A subscription already holding an event for seq (from
// another cursor, or listed twice in matches) gets no second one: its
// existing event is returned instead.
func (db *DB) Record(ctx context.Context, cursor string, seq int64, at time.Time, matches []fhirstore.Match) ([]fhirstore.Event, error) {
	if err := fhirstore.ValidateRecord(cursor, seq, matches); err != nil {
		return nil, err
	}
	ms := at.UnixMilli()
	if db.closed() {
		return nil, fhirstore.ErrClosed
	}
	var out []fhirstore.Event
	err := db.writeFunc(ctx, func(ctx context.Context, tx *wtx) error {
		var err error
		out, err = db.record(ctx, tx, cursor, seq, ms, matches)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// RecordMany records a batch of changes in one transaction, as if Record
// were called for each in order: all of them or, on an error, none. The
// events of recs[i] are out[i]. One commit for a batch lets the matcher
// keep pace with writes arriving faster than commits can follow one
// another.
func (db *DB) RecordMany(ctx context.Context, cursor string, recs []fhirstore.Recording) ([][]fhirstore.Event, error) {
	for i, r := range recs {
		if err := fhirstore.ValidateRecord(cursor, r.Seq, r.Matches); err != nil {
			return nil, err
		}
		if i > 0 && r.Seq <= recs[i-1].Seq {
			return nil, fmt.Errorf("%w: recordings out of seq order (%d after %d)", fhirstore.ErrInvalid, r.Seq, recs[i-1].Seq)
		}
	}
	if db.closed() {
		return nil, fhirstore.ErrClosed
	}
	out := make([][]fhirstore.Event, len(recs))
	err := db.writeFunc(ctx, func(ctx context.Context, tx *wtx) error {
		for i, r := range recs {
			evs, err := db.record(ctx, tx, cursor, r.Seq, r.At.UnixMilli(), r.Matches)
			if err != nil {
				return err
			}
			out[i] = evs
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// record is Record inside the group-commit transaction tx.
func (db *DB) record(ctx context.Context, tx *wtx, cursor string, seq, ms int64, matches []fhirstore.Match) ([]fhirstore.Event, error) {
	cur, err := db.cursor(ctx, tx, cursor)
	if err != nil {
		return nil, fmt.Errorf("record events: %w", err)
	}
	if cur >= seq {
		evs, err := db.eventsOfSeq(ctx, tx, seq)
		if err != nil {
			return nil, fmt.Errorf("record events: replay: %w", err)
		}
		return evs, nil
	}
	// Events already recorded for seq (under another cursor), found with
	// one query rather than one per match (and none when no event can be
	// there yet); matches listed twice find the event recorded for their
	// first listing here too.
	var have map[string]fhirstore.Event
	if len(matches) > 0 {
		have = make(map[string]fhirstore.Event, len(matches))
		some, err := db.mayHaveEvents(ctx, tx, seq)
		if err != nil {
			return nil, fmt.Errorf("record events: %w", err)
		}
		if some {
			evs, err := db.eventsOfSeq(ctx, tx, seq)
			if err != nil {
				return nil, fmt.Errorf("record events: %w", err)
			}
			for _, ev := range evs {
				have[ev.SubscriptionID] = ev
			}
		}
	}
	out := make([]fhirstore.Event, 0, len(matches))
	ins := tx.StmtContext(ctx, db.evStmts.insEvent)
	for _, m := range matches {
		if ev, ok := have[m.SubscriptionID]; ok {
			out = append(out, ev)
			continue
		}
		number, err := db.nextNumber(ctx, tx, m.SubscriptionID)
		if err != nil {
			return nil, fmt.Errorf("record events: number event of %s: %w", m.SubscriptionID, err)
		}
		if _, err := ins.ExecContext(ctx, m.SubscriptionID, number, seq,
			m.Topic, m.Type, m.ID, m.VersionID, string(m.Interaction), ms); err != nil {
			return nil, fmt.Errorf("record events: insert event %d of %s: %w", number, m.SubscriptionID, err)
		}
		ev := fhirstore.Event{Match: m, Number: number, ChangeSeq: seq, Time: time.UnixMilli(ms).UTC()}
		have[m.SubscriptionID] = ev
		out = append(out, ev)
	}
	if len(out) > 0 {
		db.recorded(seq)
	}
	if _, err := tx.StmtContext(ctx, db.evStmts.putCursor).ExecContext(ctx, cursor, seq); err != nil {
		return nil, fmt.Errorf("record events: move cursor %q: %w", cursor, err)
	}
	db.setCursor(cursor, seq)
	return out, nil
}

// eventsOfSeq returns the events recorded for the change seq, ordered by
// subscription id; called inside the write transaction tx.
func (db *DB) eventsOfSeq(ctx context.Context, tx *wtx, seq int64) ([]fhirstore.Event, error) {
	rows, err := tx.StmtContext(ctx, db.evStmts.seqEvents).QueryContext(ctx, seq)
	if err != nil {
		return nil, fmt.Errorf("events of seq %d: %w", seq, err)
	}
	evs, err := scanEvents(rows)
	if err != nil {
		return nil, fmt.Errorf("events of seq %d: %w", seq, err)
	}
	return evs, nil
}

// writeFunc runs fn in the next group-commit transaction, in a savepoint
// of its own when the batch holds other requests, and returns after the
// commit: fn's error, or the commit's.
func (db *DB) writeFunc(ctx context.Context, fn func(ctx context.Context, tx *wtx) error) error {
	_, err := db.submit(&request{ctx: ctx, fn: fn, done: make(chan struct{})})
	return err
}

// Events returns the events of a subscription numbered from..to (to = 0:
// no upper bound), in number order, at most limit of them (0: all).
func (db *DB) Events(ctx context.Context, subscriptionID string, from, to int64, limit int) ([]fhirstore.Event, error) {
	if limit < 0 {
		return nil, fmt.Errorf("%w: events limit %d", fhirstore.ErrInvalid, limit)
	}
	if db.closed() {
		return nil, fhirstore.ErrClosed
	}
	if to <= 0 {
		to = math.MaxInt64
	}
	lim := int64(limit)
	if limit == 0 {
		lim = -1 // SQLite: no limit
	}
	rd, err := db.reads()
	if err != nil {
		return nil, err
	}
	rows, err := rd.readEvents.QueryContext(ctx, subscriptionID, from, to, lim)
	if err != nil {
		return nil, fmt.Errorf("read events of %s: %w", subscriptionID, err)
	}
	evs, err := scanEvents(rows)
	if err != nil {
		return nil, fmt.Errorf("read events of %s: %w", subscriptionID, err)
	}
	return evs, nil
}

const stateColumns = `subscription_id, ` + lastNumber + `, delivered, failures, last_error,
	last_attempt, last_success, next_attempt`

// State returns the delivery state of a subscription, or an error
// wrapping fhirstore.ErrNoState.
func (db *DB) State(ctx context.Context, subscriptionID string) (fhirstore.SubscriptionState, error) {
	if db.closed() {
		return fhirstore.SubscriptionState{}, fhirstore.ErrClosed
	}
	rd, err := db.reads()
	if err != nil {
		return fhirstore.SubscriptionState{}, err
	}
	st, err := scanState(rd.readState.QueryRowContext(ctx, subscriptionID))
	if errors.Is(err, sql.ErrNoRows) {
		return st, fmt.Errorf("%w: %s", fhirstore.ErrNoState, subscriptionID)
	}
	if err != nil {
		return st, fmt.Errorf("read state of %s: %w", subscriptionID, err)
	}
	return st, nil
}

// States returns the delivery state of every subscription that has one,
// ordered by subscription id.
func (db *DB) States(ctx context.Context) ([]fhirstore.SubscriptionState, error) {
	if db.closed() {
		return nil, fhirstore.ErrClosed
	}
	rows, err := db.reader.QueryContext(ctx, `SELECT `+stateColumns+` FROM subscription_state ORDER BY subscription_id`)
	if err != nil {
		return nil, fmt.Errorf("read states: %w", err)
	}
	defer rows.Close()
	var out []fhirstore.SubscriptionState
	for rows.Next() {
		st, err := scanState(rows)
		if err != nil {
			return nil, fmt.Errorf("read states: %w", err)
		}
		out = append(out, st)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read states: %w", err)
	}
	return out, nil
}

// SaveDelivery stores the delivery fields of st, creating the state if
// needed. EventCount is left alone and Delivered never moves backwards.
func (db *DB) SaveDelivery(ctx context.Context, st fhirstore.SubscriptionState) error {
	if err := fhirstore.ValidateDelivery(st); err != nil {
		return err
	}
	if db.closed() {
		return fhirstore.ErrClosed
	}
	return db.writeFunc(ctx, func(ctx context.Context, tx *wtx) error {
		if _, err := tx.StmtContext(ctx, db.evStmts.saveState).ExecContext(ctx, st.SubscriptionID, st.Delivered,
			st.ConsecutiveFailures, st.LastError, toMillis(st.LastAttempt), toMillis(st.LastSuccess),
			toMillis(st.NextAttempt)); err != nil {
			return fmt.Errorf("save delivery state of %s: %w", st.SubscriptionID, err)
		}
		return nil
	})
}

// SaveDeliveries stores several delivery states (each as SaveDelivery
// does) in one commit. An invalid state fails the whole call before
// anything is written.
func (db *DB) SaveDeliveries(ctx context.Context, states []fhirstore.SubscriptionState) error {
	for _, st := range states {
		if err := fhirstore.ValidateDelivery(st); err != nil {
			return err
		}
	}
	if db.closed() {
		return fhirstore.ErrClosed
	}
	return db.writeFunc(ctx, func(ctx context.Context, tx *wtx) error {
		stmt := tx.StmtContext(ctx, db.evStmts.saveState)
		for _, st := range states {
			if _, err := stmt.ExecContext(ctx, st.SubscriptionID, st.Delivered, st.ConsecutiveFailures, st.LastError,
				toMillis(st.LastAttempt), toMillis(st.LastSuccess), toMillis(st.NextAttempt)); err != nil {
				return fmt.Errorf("save delivery state of %s: %w", st.SubscriptionID, err)
			}
		}
		return nil
	})
}

// Prune deletes the subscription's delivered events beyond the newest keep
// ones; undelivered events are never deleted.
func (db *DB) Prune(ctx context.Context, subscriptionID string, keep int) error {
	if keep < 0 {
		return fmt.Errorf("%w: prune keep %d", fhirstore.ErrInvalid, keep)
	}
	if db.closed() {
		return fhirstore.ErrClosed
	}
	return db.writeFunc(ctx, func(ctx context.Context, tx *wtx) error {
		// the last event may go: its number is kept in event_count
		if _, err := tx.StmtContext(ctx, db.evStmts.keepCount).ExecContext(ctx, subscriptionID); err != nil {
			return fmt.Errorf("prune events of %s: keep the count: %w", subscriptionID, err)
		}
		if _, err := tx.StmtContext(ctx, db.evStmts.pruneEv).ExecContext(ctx, subscriptionID, subscriptionID, keep); err != nil {
			return fmt.Errorf("prune events of %s: %w", subscriptionID, err)
		}
		return nil
	})
}

// DropSubscription deletes the events and the state of a subscription in
// one transaction.
func (db *DB) DropSubscription(ctx context.Context, subscriptionID string) error {
	if db.closed() {
		return fhirstore.ErrClosed
	}
	return db.writeFunc(ctx, func(ctx context.Context, tx *wtx) error {
		delete(db.counts.numbers, subscriptionID) // numbering starts again at 1
		for _, st := range []*sql.Stmt{db.evStmts.dropEvents, db.evStmts.dropState} {
			if _, err := tx.StmtContext(ctx, st).ExecContext(ctx, subscriptionID); err != nil {
				return fmt.Errorf("drop subscription %s: %w", subscriptionID, err)
			}
		}
		return nil
	})
}

func scanEvent(row scanner) (fhirstore.Event, error) {
	var (
		ev    fhirstore.Event
		inter string
		ms    int64
	)
	err := row.Scan(&ev.SubscriptionID, &ev.Number, &ev.ChangeSeq, &ev.Topic, &ev.Type, &ev.ID,
		&ev.VersionID, &inter, &ms)
	ev.Interaction = fhirstore.Interaction(inter)
	ev.Time = time.UnixMilli(ms).UTC()
	return ev, err
}

// scanEvents reads and closes rows.
func scanEvents(rows *sql.Rows) ([]fhirstore.Event, error) {
	defer rows.Close()
	var out []fhirstore.Event
	for rows.Next() {
		ev, err := scanEvent(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, ev)
	}
	return out, rows.Err()
}

func scanState(row scanner) (fhirstore.SubscriptionState, error) {
	var (
		st                         fhirstore.SubscriptionState
		attempt, success, nextTime int64
	)
	err := row.Scan(&st.SubscriptionID, &st.EventCount, &st.Delivered, &st.ConsecutiveFailures,
		&st.LastError, &attempt, &success, &nextTime)
	st.LastAttempt, st.LastSuccess, st.NextAttempt = fromMillis(attempt), fromMillis(success), fromMillis(nextTime)
	return st, err
}

// toMillis stores a time as unix milliseconds, the zero time as 0.
func toMillis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMillis(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}
