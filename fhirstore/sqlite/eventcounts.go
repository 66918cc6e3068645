package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Event numbers are kept in memory when the store is Exclusive: the
// number of the last event recorded for each subscription, and the last
// seq of each cursor. Recording an event is then one insert into
// subscription_events. Bumping the subscription's event_count in
// subscription_state besides, one statement more per event, was a third
// of the cost of recording (BenchmarkRecordFanout).
//
// subscription_state.event_count is therefore a lower bound: the number
// of the last event is the larger of it and the subscription's highest
// event number (lastNumber). It is brought up to date where events can
// go (Prune), so it never falls behind a deleted event.
//
// The counts live under the write lock. They are written as events are
// recorded, inside the transaction; whatever can undo that write (a
// request rolled back to its savepoint, a transaction rolled back, a
// failed commit) forgets them all (forget), and the next use reads the
// store again inside its transaction. Without Exclusive another process
// may record too, so every number is read from the store.
type eventCounts struct {
	numbers map[string]int64 // subscription id → number of its last event
	cursors map[string]int64 // cursor name → seq
	// maxSeq is the highest change seq with a recorded event, when
	// seqKnown: a seq above it can have no events yet.
	maxSeq   int64
	seqKnown bool
}

// maxCounted bounds the numbers kept: past it they are forgotten and
// read again as needed.
const maxCounted = 1 << 20

// lastNumber is the number of a subscription's last event, for the state
// queries: event_count is a lower bound (see eventCounts).
const lastNumber = `max(event_count, ifnull((SELECT max(e.number) FROM subscription_events e
	WHERE e.subscription_id = subscription_state.subscription_id), 0))`

// forget drops every count; called with wmu held.
func (c *eventCounts) forget() {
	c.numbers, c.cursors, c.maxSeq, c.seqKnown = nil, nil, 0, false
}

// nextNumber returns the number of the next event of sub and counts it;
// called inside the write transaction tx.
func (db *DB) nextNumber(ctx context.Context, tx *wtx, sub string) (int64, error) {
	c := &db.counts
	if n, ok := c.numbers[sub]; ok && db.cfg.Exclusive {
		c.numbers[sub] = n + 1
		return n + 1, nil
	}
	var n int64
	if err := tx.StmtContext(ctx, db.evStmts.bumpCount).QueryRowContext(ctx, sub).Scan(&n); err != nil {
		return 0, err
	}
	if db.cfg.Exclusive {
		if c.numbers == nil || len(c.numbers) >= maxCounted {
			c.numbers = make(map[string]int64)
		}
		c.numbers[sub] = n
	}
	return n, nil
}

// cursor returns the seq of a cursor; called inside the write
// transaction tx.
func (db *DB) cursor(ctx context.Context, tx *wtx, name string) (int64, error) {
	c := &db.counts
	if seq, ok := c.cursors[name]; ok && db.cfg.Exclusive {
		return seq, nil
	}
	var seq int64
	err := tx.StmtContext(ctx, db.evStmts.getCursor).QueryRowContext(ctx, name).Scan(&seq)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("read cursor %q: %w", name, err)
	}
	db.setCursor(name, seq)
	return seq, nil
}

// setCursor notes the seq a cursor was moved to.
func (db *DB) setCursor(name string, seq int64) {
	if !db.cfg.Exclusive {
		return
	}
	c := &db.counts
	if c.cursors == nil {
		c.cursors = make(map[string]int64)
	}
	c.cursors[name] = seq
}

// mayHaveEvents reports whether events may already be recorded for seq
// (by another cursor); false only when it is known that none are.
func (db *DB) mayHaveEvents(ctx context.Context, tx *wtx, seq int64) (bool, error) {
	if !db.cfg.Exclusive {
		return true, nil
	}
	c := &db.counts
	if !c.seqKnown {
		if err := tx.QueryRowContext(ctx, `SELECT ifnull(max(change_seq), 0) FROM subscription_events`).Scan(&c.maxSeq); err != nil {
			return true, fmt.Errorf("read last recorded seq: %w", err)
		}
		c.seqKnown = true
	}
	return seq <= c.maxSeq, nil
}

// recorded notes that events were recorded for seq.
func (db *DB) recorded(seq int64) {
	if c := &db.counts; c.seqKnown {
		c.maxSeq = max(c.maxSeq, seq)
	}
}
