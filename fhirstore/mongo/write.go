package mongo

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"time"

	"github.com/fhirsub/fhirsub/conformance/search"
	"github.com/fhirsub/fhirsub/fhirstore"
)

// maxAttempts bounds the retries of a write that keeps losing races.
const maxAttempts = 50

// extractKeys computes the index keys of a body (a variable for tests).
var extractKeys = search.Keys

// entry is one validated write.
type entry struct {
	method  fhirstore.Method
	typ, id string
	body    map[string]any
	ifMatch string
	at      time.Time
}

// newEntry validates op; a create without id gets a new one.
func newEntry(op fhirstore.Op, at time.Time) (*entry, error) {
	e := &entry{method: op.Method, typ: op.Type, id: op.ID, body: op.Body, ifMatch: op.IfMatch, at: at}
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
				e.id = fhirstore.NewID()
			}
		} else if raw, ok := op.Body["id"]; ok {
			if s, _ := raw.(string); s != e.id {
				return nil, fmt.Errorf("%w: body id %v does not match %q", fhirstore.ErrInvalid, raw, e.id)
			}
		}
	case fhirstore.MethodDelete:
		if !fhirstore.ValidType(e.typ) {
			return nil, fmt.Errorf("%w: resource type %q", fhirstore.ErrInvalid, e.typ)
		}
	default:
		return nil, fmt.Errorf("%w: unknown method %q", fhirstore.ErrInvalid, op.Method)
	}
	if !fhirstore.ValidID(e.id) {
		return nil, fmt.Errorf("%w: id %q", fhirstore.ErrInvalid, e.id)
	}
	return e, nil
}

// state is what a writer knows about Type/id before writing.
type state struct {
	exists      bool // a real version exists
	vid         int64
	deleted     bool
	lastUpdated time.Time
	top         int64 // highest version number taken, placeholders included
}

// plan is the outcome decide gives for one entry.
type plan struct {
	noop        bool // delete of a deleted resource: nothing to write
	vid, prev   int64
	interaction fhirstore.Interaction
	created     bool
	deleted     bool
}

// decide applies the store contract's rules to e given the current state.
func decide(e *entry, cur state) (plan, error) {
	if e.ifMatch != "" && (!cur.exists || e.ifMatch != formatVid(cur.vid)) {
		return plan{}, fmt.Errorf("%w: %s/%s If-Match %q", fhirstore.ErrVersionConflict, e.typ, e.id, e.ifMatch)
	}
	p := plan{vid: cur.top + 1, interaction: fhirstore.InteractionCreate}
	if cur.exists && !cur.deleted {
		p.prev = cur.vid
	}
	switch e.method {
	case fhirstore.MethodCreate:
		if cur.exists {
			return plan{}, fmt.Errorf("%w: %s/%s already exists", fhirstore.ErrVersionConflict, e.typ, e.id)
		}
		p.created = true
	case fhirstore.MethodUpdate:
		if p.prev > 0 {
			p.interaction = fhirstore.InteractionUpdate
		} else {
			p.created = true
		}
	case fhirstore.MethodDelete:
		if !cur.exists {
			return plan{}, fmt.Errorf("%w: %s/%s", fhirstore.ErrNotFound, e.typ, e.id)
		}
		if cur.deleted {
			return plan{noop: true, vid: cur.vid}, nil
		}
		p.interaction = fhirstore.InteractionDelete
		p.deleted = true
	}
	return p, nil
}

// tombstone is the result of deleting an already deleted resource.
func (e *entry) tombstone(cur state) fhirstore.OpResult {
	return fhirstore.OpResult{Resource: &fhirstore.Resource{
		Type: e.typ, ID: e.id, VersionID: formatVid(cur.vid),
		LastUpdated: cur.lastUpdated.UTC(), Deleted: true,
	}}
}

// build stamps and encodes the body for p and returns the version and
// current-resource documents (their Seq is set by the caller).
func (e *entry) build(p plan) (*versionDoc, *resourceDoc, error) {
	v := &versionDoc{
		Key: versionKey(e.typ, e.id, p.vid), Type: e.typ, ID: e.id, Vid: p.vid,
		Deleted: p.deleted, LastUpdated: e.at,
	}
	r := &resourceDoc{
		Key: resourceKey(e.typ, e.id), Type: e.typ, ID: e.id, Vid: p.vid,
		Deleted: p.deleted, LastUpdated: e.at, Keys: []string{},
	}
	if p.deleted {
		return v, r, nil
	}
	if err := fhirstore.Stamp(e.body, e.id, formatVid(p.vid), e.at); err != nil {
		return nil, nil, err
	}
	data, err := fhirstore.Encode(e.body)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", fhirstore.ErrInvalid, err)
	}
	keys, err := extractKeys(e.body)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: index keys: %w", fhirstore.ErrInvalid, err)
	}
	v.Body, r.Body, r.Keys = string(data), string(data), flattenKeys(keys)
	return v, r, nil
}

func (e *entry) change(p plan, state string) *changeDoc {
	return &changeDoc{
		State: state, Type: e.typ, ID: e.id, Vid: p.vid, Prev: p.prev,
		Interaction: string(p.interaction), Time: e.at, Reserved: time.Now().UTC(),
	}
}

// Create stores a new resource under a new id.
func (d *DB) Create(ctx context.Context, body map[string]any) (*fhirstore.Resource, error) {
	res, err := d.writeOne(ctx, fhirstore.Op{Method: fhirstore.MethodCreate, Body: body})
	if err != nil {
		return nil, err
	}
	return res.Resource, nil
}

// Update stores a new version of the resource named by body's resourceType
// and id. A body id different from id gives fhirstore.ErrInvalid.
func (d *DB) Update(ctx context.Context, id string, body map[string]any, opt fhirstore.WriteOptions) (*fhirstore.Resource, bool, error) {
	res, err := d.writeOne(ctx, fhirstore.Op{Method: fhirstore.MethodUpdate, ID: id, Body: body, IfMatch: opt.IfMatch})
	if err != nil {
		return nil, false, err
	}
	return res.Resource, res.Created, nil
}

// Delete writes a tombstone for typ/id; an already deleted resource gives
// its existing tombstone and no write. If-Match is compared with the
// current version, tombstone included.
func (d *DB) Delete(ctx context.Context, typ, id string, opt fhirstore.WriteOptions) (*fhirstore.Resource, error) {
	res, err := d.writeOne(ctx, fhirstore.Op{Method: fhirstore.MethodDelete, Type: typ, ID: id, IfMatch: opt.IfMatch})
	if err != nil {
		return nil, err
	}
	return res.Resource, nil
}

func (d *DB) writeOne(ctx context.Context, op fhirstore.Op) (fhirstore.OpResult, error) {
	e, err := newEntry(op, fhirstore.Now())
	if err != nil {
		return fhirstore.OpResult{}, err
	}
	res, err := d.write(ctx, []*entry{e})
	if err != nil {
		var oe *fhirstore.OpError
		if errors.As(err, &oe) {
			return fhirstore.OpResult{}, oe.Err
		}
		return fhirstore.OpResult{}, err
	}
	return res[0], nil
}

// Transaction applies ops in order, without a multi-document transaction
// (one protocol on every MongoDB deployment; see the package
// documentation). Every entry's preconditions are checked before anything
// is written, under this process's write
// locks; a database failure between two entries can then leave the
// earlier entries applied (see the package documentation). A create with a
// given id that already exists gives fhirstore.ErrVersionConflict.
func (d *DB) Transaction(ctx context.Context, ops []fhirstore.Op) ([]fhirstore.OpResult, error) {
	at := fhirstore.Now()
	entries := make([]*entry, len(ops))
	for i, op := range ops {
		e, err := newEntry(op, at)
		if err != nil {
			return nil, &fhirstore.OpError{Index: i, Err: err}
		}
		entries[i] = e
	}
	if len(entries) == 0 {
		return []fhirstore.OpResult{}, nil
	}
	return d.write(ctx, entries)
}

// write takes the in-process locks of the entries and applies them.
func (d *DB) write(ctx context.Context, entries []*entry) ([]fhirstore.OpResult, error) {
	res, err := d.writeLocked(ctx, entries)
	return res, export(err)
}

func (d *DB) writeLocked(ctx context.Context, entries []*entry) ([]fhirstore.OpResult, error) {
	unlock := d.lock(entries)
	defer unlock()
	if d.closed() {
		return nil, fhirstore.ErrClosed
	}
	if len(entries) > 1 {
		if err := d.precheck(ctx, entries); err != nil {
			return nil, err
		}
	}
	results := make([]fhirstore.OpResult, len(entries))
	for i, e := range entries {
		res, err := d.applyDirect(ctx, e)
		if err != nil {
			if i > 0 {
				err = fmt.Errorf("%w (entries 0 to %d were applied: MongoDB writes are not transactional here)", err, i-1)
			}
			return nil, &fhirstore.OpError{Index: i, Err: err}
		}
		results[i] = res
	}
	return results, nil
}

// lock takes the striped in-process write locks of entries in stripe
// order and returns the function that releases them. They serialise this
// process's writers of one resource, so that only writers in other
// processes ever race on the database.
func (d *DB) lock(entries []*entry) func() {
	keys := make([]string, len(entries))
	for i, e := range entries {
		keys[i] = resourceKey(e.typ, e.id)
	}
	return d.lockKeys(keys)
}

// lockKeys takes the striped in-process locks of keys in stripe order and
// returns the function that releases them.
func (d *DB) lockKeys(keys []string) func() {
	if d.noLocalLocks {
		return func() {}
	}
	stripes := make([]int, 0, len(keys))
	for _, k := range keys {
		h := fnv.New32a()
		_, _ = h.Write([]byte(k))
		stripes = append(stripes, int(h.Sum32()%uint32(len(d.locks))))
	}
	slices.Sort(stripes)
	stripes = slices.Compact(stripes)
	for _, s := range stripes {
		d.locks[s].Lock()
	}
	return func() {
		for _, s := range stripes {
			d.locks[s].Unlock()
		}
	}
}

// precheck runs decide and build for every entry against the current
// state as the earlier entries will leave it, so that an entry that must
// fail fails before anything is written.
func (d *DB) precheck(ctx context.Context, entries []*entry) error {
	sim := map[string]state{}
	for i, e := range entries {
		key := resourceKey(e.typ, e.id)
		cur, ok := sim[key]
		if !ok {
			var err error
			if cur, err = d.current(ctx, e.typ, e.id); err != nil {
				return &fhirstore.OpError{Index: i, Err: err}
			}
		}
		p, err := decide(e, cur)
		if err != nil {
			return &fhirstore.OpError{Index: i, Err: err}
		}
		if p.noop {
			continue
		}
		if _, _, err := e.build(p); err != nil {
			return &fhirstore.OpError{Index: i, Err: err}
		}
		sim[key] = state{exists: true, vid: p.vid, deleted: p.deleted, lastUpdated: e.at, top: p.vid}
	}
	return nil
}

// applyDirect writes one entry without a transaction (see doc.go for the
// protocol): reserve a seq with a pending change, insert the version (the
// unique _id decides races), point the current resource at it, mark the
// change committed.
func (d *DB) applyDirect(ctx context.Context, e *entry) (fhirstore.OpResult, error) {
	for attempt := range maxAttempts {
		read := d.current
		if attempt == 0 {
			read = d.currentFast
		}
		cur, err := read(ctx, e.typ, e.id)
		if err != nil {
			return fhirstore.OpResult{}, err
		}
		p, err := decide(e, cur)
		if err != nil {
			return fhirstore.OpResult{}, err
		}
		if p.noop {
			return e.tombstone(cur), nil
		}
		v, r, err := e.build(p)
		if err != nil {
			return fhirstore.OpResult{}, err
		}
		seq, err := d.reserve(ctx, e.change(p, statePending))
		if err != nil {
			return fhirstore.OpResult{}, err
		}
		v.Seq, r.Seq = seq, seq
		if _, err := d.versions.InsertOne(ctx, v); err != nil {
			if !isDup(err) {
				// Outcome unknown: the change stays pending and a reader
				// settles it after the commit timeout.
				return fhirstore.OpResult{}, dbErr("insert version", err)
			}
			// Another writer (or a reader settling this seq) took the
			// version number: give the seq up and start again.
			if err := d.setState(ctx, seq, stateAborted); err != nil {
				return fhirstore.OpResult{}, err
			}
			continue
		}
		if err := d.putCurrent(ctx, r); err != nil {
			return fhirstore.OpResult{}, err
		}
		if err := d.setState(ctx, seq, stateCommitted); err != nil {
			return fhirstore.OpResult{}, err
		}
		d.notify.Notify()
		return fhirstore.OpResult{Resource: v.resource(), Created: p.created}, nil
	}
	return fhirstore.OpResult{}, fmt.Errorf("write %s/%s: gave up after %d lost races", e.typ, e.id, maxAttempts)
}
