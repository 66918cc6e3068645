package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"time"

	"github.com/fhirsub/fhirsub/conformance/search"
	"github.com/fhirsub/fhirsub/fhirstore"
)

// extractKeys computes the index keys of a body.
var extractKeys = search.Keys

// entry is one validated write with its body stamped and encoded for the
// version it is expected to get. The encoding runs before the write lock
// is taken; apply re-stamps only when the guess turns out wrong.
type entry struct {
	op      fhirstore.Op
	typ, id string
	at      time.Time

	version int // the version data and keys were computed for; 0 = none
	data    []byte
	keys    []search.Key
	// fresh is set when the store made up id (a create without one): no
	// row can have it, so apply does not look for the current version
	// and inserts the resource row without ON CONFLICT, which would fail
	// rather than overwrite should the impossible happen.
	fresh bool
	// change is the feed record apply wrote and body the version's body
	// (nil for a tombstone), for recentChanges and recentVersions.
	change fhirstore.Change
	body   []byte
}

// newEntry validates op and, for create and update, stamps and encodes its
// body for version guess (0 = do not guess).
func newEntry(op fhirstore.Op, at time.Time, guess int) (*entry, error) {
	e := &entry{op: op, typ: op.Type, id: op.ID, at: at}
	switch op.Method {
	case fhirstore.MethodCreate, fhirstore.MethodUpdate:
		typ, err := fhirstore.ResourceType(op.Body)
		if err != nil {
			return nil, err
		}
		if e.typ != "" && e.typ != typ {
			return nil, fmt.Errorf("%w: resourceType %s does not match %s", fhirstore.ErrInvalid, typ, e.typ)
		}
		e.typ = typ
		if op.Method == fhirstore.MethodCreate {
			if e.id == "" {
				e.id, e.fresh = fhirstore.NewID(), true
			}
			guess = 1
		} else if raw, ok := op.Body["id"]; ok {
			if s, _ := raw.(string); s != e.id {
				return nil, fmt.Errorf("%w: body id %v does not match %q", fhirstore.ErrInvalid, raw, e.id)
			}
		}
	case fhirstore.MethodDelete:
		if !fhirstore.ValidType(e.typ) {
			return nil, fmt.Errorf("%w: resource type %q", fhirstore.ErrInvalid, e.typ)
		}
		guess = 0
	default:
		return nil, fmt.Errorf("%w: unknown method %q", fhirstore.ErrInvalid, op.Method)
	}
	if !fhirstore.ValidID(e.id) {
		return nil, fmt.Errorf("%w: id %q", fhirstore.ErrInvalid, e.id)
	}
	if guess > 0 {
		if err := e.stamp(guess); err != nil {
			return nil, err
		}
	}
	return e, nil
}

func (e *entry) stamp(version int) error {
	if err := fhirstore.Stamp(e.op.Body, e.id, strconv.Itoa(version), e.at); err != nil {
		return err
	}
	data, err := fhirstore.Encode(e.op.Body)
	if err != nil {
		return fmt.Errorf("%w: %w", fhirstore.ErrInvalid, err)
	}
	keys, err := extractKeys(e.op.Body)
	if err != nil {
		return fmt.Errorf("%w: index keys: %w", fhirstore.ErrInvalid, err)
	}
	// _id is answered by the resources primary key (see Search), so its
	// keys are not stored: that saves two random index pages per write.
	keys = slices.DeleteFunc(keys, func(k search.Key) bool { return k.Param == "_id" })
	e.version, e.data, e.keys = version, data, keys
	return nil
}

// Create stores a new resource under a new id.
func (db *DB) Create(ctx context.Context, body map[string]any) (*fhirstore.Resource, error) {
	e, err := newEntry(fhirstore.Op{Method: fhirstore.MethodCreate, Body: body}, fhirstore.Now(), 1)
	if err != nil {
		return nil, err
	}
	res, err := db.write(ctx, []*entry{e})
	if err != nil {
		return nil, unwrapOp(err)
	}
	return res[0].Resource, nil
}

// Update stores a new version of the resource named by body's resourceType
// and id. A body id different from id gives fhirstore.ErrInvalid.
func (db *DB) Update(ctx context.Context, id string, body map[string]any, opt fhirstore.WriteOptions) (*fhirstore.Resource, bool, error) {
	op := fhirstore.Op{Method: fhirstore.MethodUpdate, ID: id, Body: body, IfMatch: opt.IfMatch}
	guess := 0
	if v, err := strconv.Atoi(opt.IfMatch); err == nil && v > 0 {
		// the update succeeds only on version v: no read to guess
		guess = v + 1
	} else if typ, err := fhirstore.ResourceType(body); err == nil && fhirstore.ValidID(id) {
		// Stamp outside the write lock for the version that is most
		// likely next; apply re-stamps if another write came first.
		if cur, err := db.Read(ctx, typ, id); err == nil || errors.Is(err, fhirstore.ErrGone) {
			if v, err := strconv.Atoi(cur.VersionID); err == nil {
				guess = v + 1
			}
		} else if errors.Is(err, fhirstore.ErrNotFound) {
			guess = 1
		}
	}
	e, err := newEntry(op, fhirstore.Now(), guess)
	if err != nil {
		return nil, false, err
	}
	res, err := db.write(ctx, []*entry{e})
	if err != nil {
		return nil, false, unwrapOp(err)
	}
	return res[0].Resource, res[0].Created, nil
}

// Delete writes a tombstone for typ/id; an already deleted resource gives
// its existing tombstone and no write. If-Match is compared with the
// current version, tombstone included.
func (db *DB) Delete(ctx context.Context, typ, id string, opt fhirstore.WriteOptions) (*fhirstore.Resource, error) {
	e, err := newEntry(fhirstore.Op{Method: fhirstore.MethodDelete, Type: typ, ID: id, IfMatch: opt.IfMatch}, fhirstore.Now(), 0)
	if err != nil {
		return nil, err
	}
	res, err := db.write(ctx, []*entry{e})
	if err != nil {
		return nil, unwrapOp(err)
	}
	return res[0].Resource, nil
}

// Transaction applies ops in one SQL transaction. A create with a given
// id that already exists gives fhirstore.ErrVersionConflict.
func (db *DB) Transaction(ctx context.Context, ops []fhirstore.Op) ([]fhirstore.OpResult, error) {
	at := fhirstore.Now()
	entries := make([]*entry, len(ops))
	for i, op := range ops {
		e, err := newEntry(op, at, 0)
		if err != nil {
			return nil, &fhirstore.OpError{Index: i, Err: err}
		}
		entries[i] = e
	}
	return db.write(ctx, entries)
}

func unwrapOp(err error) error {
	var oe *fhirstore.OpError
	if errors.As(err, &oe) {
		return oe.Err
	}
	return err
}

// maxBatch caps the number of requests committed together.
const maxBatch = 256

// request is one Create/Update/Delete/Transaction call, or one event
// store write, waiting to be committed, possibly together with others
// (group commit).
type request struct {
	ctx     context.Context
	entries []*entry
	// fn, when set, is run in the batch's transaction instead of applying
	// entries (the event store's writes, see writeFunc). It must run its
	// statements under the ctx it is given.
	fn      func(ctx context.Context, tx *wtx) error
	results []fhirstore.OpResult
	written []*entry // the entries that wrote a version, for recentChanges and recentVersions once committed
	err     error
	done    chan struct{} // closed when results and err are set
	lead    chan struct{} // closed when the caller is handed the lead (submit)
}

// write commits entries atomically. Concurrent calls are committed in
// batches: the caller that gets the write lock becomes the leader, takes
// every queued request and applies them in one SQL transaction, each
// inside its own savepoint so that a failing request rolls back alone.
// One commit then covers the whole batch, which is what makes concurrent
// creates cheap. Waiters are woken after the commit.
func (db *DB) write(ctx context.Context, entries []*entry) ([]fhirstore.OpResult, error) {
	return db.submit(&request{ctx: ctx, entries: entries, done: make(chan struct{})})
}

// submit queues req for the next group commit and waits for its result.
//
// At most one caller leads at a time (db.leading). A caller that finds no
// leader leads: it takes the queue, commits it and, if more requests
// queued meanwhile, hands the lead to the oldest of them by closing its
// lead channel. Every other caller sleeps until its request is done or it
// is handed the lead, so each waiter wakes once, when its answer is ready.
// (Waiters that took the write lock in turn just to look at their done
// channel woke one by one behind every commit: a convoy on the lock that
// lengthened the tail of every batch.)
func (db *DB) submit(req *request) ([]fhirstore.OpResult, error) {
	req.lead = make(chan struct{})
	db.qmu.Lock()
	db.queue = append(db.queue, req)
	fresh := !db.leading
	db.leading = true
	db.qmu.Unlock()
	if !fresh {
		select {
		case <-req.done: // a leader committed it
			return req.results, req.err
		case <-req.lead: // handed the lead, with req at the head of the queue
		}
	}
	for {
		if fresh {
			// Let goroutines that are about to queue a write do so
			// first: a larger batch shares one commit. A handed lead
			// skips this: its queue filled during the previous commit.
			runtime.Gosched()
			fresh = false
		}
		db.wmu.Lock()
		db.qmu.Lock()
		n := min(len(db.queue), maxBatch)
		batch := db.queue[:n:n]
		db.queue = db.queue[n:]
		db.qmu.Unlock()
		derived, writes := splitDerived(batch)
		if len(derived) > 0 {
			db.commit(derived)
		}
		if len(writes) > 0 {
			db.commit(writes)
		}
		db.finishCheckpoint()
		db.wmu.Unlock()

		db.qmu.Lock()
		if len(db.queue) == 0 {
			db.leading = false
			db.qmu.Unlock()
			break
		}
		select {
		case <-req.done:
			close(db.queue[0].lead) // db.leading stays true: the lead passes on
			db.qmu.Unlock()
			return req.results, req.err
		default: // the queue was longer than maxBatch and req was not in it
			db.qmu.Unlock()
		}
	}
	<-req.done
	return req.results, req.err
}

// splitDerived splits a batch into the event store's writes and the
// resource writes, each in queue order. The event store's writes commit
// first, in a transaction of their own without an fsync (durability.go),
// so that the matcher's Record is not held behind the fsync of resource
// writes queued with it: that wait was most of the tail from a POST to
// its notification. Requests in one batch are concurrent, so committing
// one group before the other reorders nothing a caller could rely on.
func splitDerived(batch []*request) (derived, writes []*request) {
	for _, r := range batch {
		if r.fn != nil {
			derived = append(derived, r)
		} else {
			writes = append(writes, r)
		}
	}
	return derived, writes
}

// commit applies and commits one batch; it must be called with wmu held.
// It answers every request of the batch.
func (db *DB) commit(batch []*request) {
	var last int64
	committed := false
	began := time.Now()
	defer func() {
		db.observe(batch, began)
		if !committed {
			db.counts.forget() // the transaction's events are gone with it
		}
		if last > 0 {
			db.advance(last) // before the writers are answered: LastSeq reads it when Exclusive
		}
		for _, r := range batch {
			close(r.done)
		}
	}()
	fail := func(err error) {
		for _, r := range batch {
			if r.err == nil {
				r.results, r.err = nil, err
			}
		}
	}
	if db.closed() {
		fail(fhirstore.ErrClosed)
		return
	}
	if err := db.syncFor(batch); err != nil {
		fail(err)
		return
	}
	tx, err := db.begin()
	if err != nil {
		fail(fmt.Errorf("begin write: %w", err))
		return
	}
	single := len(batch) == 1
	var batchLast int64
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.err = err
			continue
		}
		if !single {
			if _, err := db.stmts.savepoint.ExecContext(db.wctx); err != nil {
				db.rollbackTx()
				fail(fmt.Errorf("savepoint: %w", err))
				return
			}
		}
		reqLast := db.run(tx, r)
		if r.err != nil && r.fn != nil {
			db.counts.forget() // what r numbered is rolled back below
		}
		switch {
		case r.err != nil && single:
			db.rollbackTx()
			return
		case r.err != nil:
			_, err = db.stmts.rollbackTo.ExecContext(db.wctx)
			if err == nil {
				_, err = db.stmts.release.ExecContext(db.wctx)
			}
		case !single:
			_, err = db.stmts.release.ExecContext(db.wctx)
		}
		if err != nil {
			db.rollbackTx()
			fail(fmt.Errorf("release savepoint: %w", err))
			return
		}
		if r.err == nil {
			batchLast = max(batchLast, reqLast)
		}
	}
	if err := db.commitTx(); err != nil {
		fail(fmt.Errorf("commit write: %w", err))
		return
	}
	committed = true
	db.committed()
	for _, r := range batch {
		if r.err == nil {
			db.remember(r.written) // before the waiters are told (advance)
		}
	}
	last = batchLast
}

// observe tells Config.Observe how long a batch took.
func (db *DB) observe(batch []*request, began time.Time) {
	if db.cfg.Observe == nil {
		return
	}
	kind := WorkResources
	if batch[0].fn != nil { // splitDerived: a batch is of one kind
		kind = WorkEvents
	}
	db.cfg.Observe(WriterWork{Kind: kind, Requests: len(batch), Took: time.Since(began)})
}

// run performs one request inside tx, setting its results or its error,
// and returns the seq of the last change it wrote (0 when none).
func (db *DB) run(tx *wtx, r *request) int64 {
	// Statements run under db.wctx: cancelling one caller's ctx
	// mid-statement would interrupt SQLite, which rolls back the
	// whole transaction and with it the other requests.
	if r.fn != nil {
		r.err = r.fn(db.wctx, tx)
		return 0
	}
	r.results = make([]fhirstore.OpResult, len(r.entries))
	var last int64
	r.written = r.written[:0]
	for i, e := range r.entries {
		res, seq, err := db.apply(db.wctx, tx, e)
		if err != nil {
			r.results, r.written, r.err = nil, nil, &fhirstore.OpError{Index: i, Err: err}
			return 0
		}
		r.results[i] = res
		if seq > 0 {
			r.written = append(r.written, e)
		}
		last = max(last, seq)
	}
	return last
}

// apply performs one entry inside tx and returns its result and the seq of
// the change it wrote (0 when it wrote nothing).
func (db *DB) apply(ctx context.Context, tx *wtx, e *entry) (fhirstore.OpResult, int64, error) {
	var (
		curVersion int
		curDeleted bool
		curTime    int64
		curKeys    sql.NullString
		exists     = true
	)
	if e.fresh {
		exists = false
	} else {
		err := tx.StmtContext(ctx, db.stmts.current).QueryRowContext(ctx, e.typ, e.id).Scan(&curVersion, &curDeleted, &curTime, &curKeys)
		if errors.Is(err, sql.ErrNoRows) {
			exists = false
		} else if err != nil {
			return fhirstore.OpResult{}, 0, fmt.Errorf("read current %s/%s: %w", e.typ, e.id, err)
		}
	}
	if e.op.IfMatch != "" && (!exists || e.op.IfMatch != strconv.Itoa(curVersion)) {
		return fhirstore.OpResult{}, 0, fmt.Errorf("%w: %s/%s If-Match %q", fhirstore.ErrVersionConflict, e.typ, e.id, e.op.IfMatch)
	}
	var (
		version     = curVersion + 1
		prev        any // NULL unless a live version existed
		interaction = fhirstore.InteractionCreate
		created     bool
	)
	if exists && !curDeleted {
		prev = curVersion
	}
	switch e.op.Method {
	case fhirstore.MethodCreate:
		if exists {
			return fhirstore.OpResult{}, 0, fmt.Errorf("%w: %s/%s already exists", fhirstore.ErrVersionConflict, e.typ, e.id)
		}
		created = true
	case fhirstore.MethodUpdate:
		if prev != nil {
			interaction = fhirstore.InteractionUpdate
		} else {
			created = true
		}
	case fhirstore.MethodDelete:
		if !exists {
			return fhirstore.OpResult{}, 0, fmt.Errorf("%w: %s/%s", fhirstore.ErrNotFound, e.typ, e.id)
		}
		if curDeleted {
			return fhirstore.OpResult{Resource: &fhirstore.Resource{
				Type: e.typ, ID: e.id, VersionID: strconv.Itoa(curVersion),
				LastUpdated: time.UnixMilli(curTime).UTC(), Deleted: true,
			}}, 0, nil
		}
		interaction = fhirstore.InteractionDelete
	}
	deleted := interaction == fhirstore.InteractionDelete
	if !deleted && e.version != version {
		if err := e.stamp(version); err != nil {
			return fhirstore.OpResult{}, 0, err
		}
	}
	var (
		body    []byte // NULL for a tombstone
		newKeys []search.Key
	)
	if !deleted {
		body, newKeys = e.data, e.keys
	}
	ms := e.at.UnixMilli()
	r, err := tx.StmtContext(ctx, db.stmts.insChange).ExecContext(ctx, e.typ, e.id, version, prev, string(interaction), ms)
	if err != nil {
		return fhirstore.OpResult{}, 0, fmt.Errorf("insert change: %w", err)
	}
	seq, err := r.LastInsertId()
	if err != nil {
		return fhirstore.OpResult{}, 0, fmt.Errorf("insert change: %w", err)
	}
	e.change = fhirstore.Change{Seq: seq, Type: e.typ, ID: e.id, VersionID: strconv.Itoa(version),
		Interaction: interaction, Time: time.UnixMilli(ms).UTC()}
	e.body = body
	if p, ok := prev.(int); ok {
		e.change.PreviousVersionID = strconv.Itoa(p)
	}
	if _, err := tx.StmtContext(ctx, db.stmts.insVersion).ExecContext(ctx, seq, e.typ, e.id, version, ms, body); err != nil {
		return fhirstore.OpResult{}, 0, fmt.Errorf("insert version: %w", err)
	}
	oldKeys, err := decodeKeys(curKeys.String)
	if err != nil {
		return fhirstore.OpResult{}, 0, fmt.Errorf("stored keys of %s/%s: %w", e.typ, e.id, err)
	}
	added, removed := diffKeys(oldKeys, newKeys)
	keysJSON, err := encodeKeys(newKeys)
	if err != nil {
		return fhirstore.OpResult{}, 0, err
	}
	putRes := db.stmts.putRes
	if e.fresh {
		putRes = db.stmts.insRes
	}
	if _, err := tx.StmtContext(ctx, putRes).ExecContext(ctx, e.typ, e.id, version, seq, deleted, keysJSON); err != nil {
		return fhirstore.OpResult{}, 0, fmt.Errorf("put resource: %w", err)
	}
	if len(removed) > 0 {
		del := tx.StmtContext(ctx, db.stmts.delKey)
		for _, k := range removed {
			if _, err := del.ExecContext(ctx, e.typ, k.param, k.value, k.sys, e.id); err != nil {
				return fhirstore.OpResult{}, 0, fmt.Errorf("delete search key: %w", err)
			}
		}
	}
	if err := db.insertKeys(ctx, tx, e.typ, e.id, added); err != nil {
		return fhirstore.OpResult{}, 0, err
	}
	return fhirstore.OpResult{Created: created, Resource: &fhirstore.Resource{
		Type: e.typ, ID: e.id, VersionID: strconv.Itoa(version),
		LastUpdated: e.at, Deleted: deleted, Body: body,
	}}, seq, nil
}

// insertKeys inserts keys with multi-row statements of up to maxKeyRows.
// The type and id, the same in every row, are made interface values once.
func (db *DB) insertKeys(ctx context.Context, tx *wtx, typ, id string, keys []keyRow) error {
	if len(keys) == 0 {
		return nil
	}
	args := make([]any, 0, 5*min(len(keys), maxKeyRows))
	typA, idA := any(typ), any(id)
	for len(keys) > 0 {
		n := min(len(keys), maxKeyRows)
		args = args[:0]
		for _, k := range keys[:n] {
			args = append(args, typA, k.param, k.value, k.sys, idA)
		}
		if _, err := tx.StmtContext(ctx, db.stmts.insKeys[n]).ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("insert search keys: %w", err)
		}
		keys = keys[n:]
	}
	return nil
}
