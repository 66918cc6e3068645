package sqlite

import (
	"slices"
	"sync"

	"github.com/fhirsub/fhirsub/fhirstore"
)

// recentMax bounds the changes kept in memory; past it, the older half
// goes.
const recentMax = 4096

// recentChanges keeps the last changes this process committed, in seq
// order, so that Changes serves the head of the feed, which the matcher
// reads after every commit, without a query: at a steady write rate that
// read was a quarter of the server's CPU (a read transaction after each
// commit). Changes committed by another process on the same file are not
// here; a read that would need one (its seq is missing) goes to SQLite.
type recentChanges struct {
	mu sync.Mutex
	cs []fhirstore.Change // increasing seq, not necessarily contiguous
}

// add appends committed changes, in increasing seq, all after those held.
func (r *recentChanges) add(cs []fhirstore.Change) {
	if len(cs) == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if n := len(r.cs); n > 0 && cs[0].Seq <= r.cs[n-1].Seq {
		r.cs = r.cs[:0] // out of order: start again rather than serve a wrong run
	}
	if len(r.cs)+len(cs) > recentMax {
		r.cs = slices.Delete(r.cs, 0, min(len(r.cs), len(r.cs)+len(cs)-recentMax/2))
	}
	r.cs = append(r.cs, cs...)
}

// after returns the changes from seq after+1 on, at most limit, while
// their seqs follow each other; ok is false when after+1 is not held
// (the caller queries the database).
func (r *recentChanges) after(after int64, limit int) (out []fhirstore.Change, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	i, found := slices.BinarySearchFunc(r.cs, after+1, func(c fhirstore.Change, seq int64) int {
		switch {
		case c.Seq < seq:
			return -1
		case c.Seq > seq:
			return 1
		}
		return 0
	})
	if !found {
		return nil, false
	}
	for next := after + 1; i < len(r.cs) && r.cs[i].Seq == next && len(out) < limit; i, next = i+1, next+1 {
		out = append(out, r.cs[i])
	}
	return out, true
}

// The versions kept in memory: at most versionsMax, versionsBytes of
// bodies in all, none larger than versionMaxBody (a large body is read
// from the database, as it always was).
const (
	versionsMax    = 1024
	versionsBytes  = 8 << 20
	versionMaxBody = 64 << 10
)

// recentVersions keeps the last versions this process wrote, so that the
// VReads that follow every write (the matcher loading the change, the
// notifications with the resource) find them without a query. A version
// never changes once committed, so what is held is always true, whoever
// else writes the file.
type recentVersions struct {
	mu    sync.Mutex
	m     map[versionKey]fhirstore.Resource
	order []versionKey // oldest first, for eviction
	bytes int          // of the bodies held
}

type versionKey struct {
	typ, id string
	version string
}

func (r *recentVersions) add(res fhirstore.Resource) {
	if len(res.Body) > versionMaxBody {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = make(map[versionKey]fhirstore.Resource, versionsMax)
	}
	n := 0 // the oldest to let go
	for drop := r.bytes + len(res.Body) - versionsBytes; n < len(r.order) && (len(r.order)-n >= versionsMax || drop > 0); n++ {
		k := r.order[n]
		size := len(r.m[k].Body)
		r.bytes -= size
		drop -= size
		delete(r.m, k)
	}
	if n > 0 {
		r.order = append(r.order[:0], r.order[n:]...)
	}
	k := versionKey{res.Type, res.ID, res.VersionID}
	r.m[k] = res
	r.order = append(r.order, k)
	r.bytes += len(res.Body)
}

// get returns a copy of a held version (its body too: callers may change
// what they are given).
func (r *recentVersions) get(typ, id, version string) (*fhirstore.Resource, bool) {
	r.mu.Lock()
	res, ok := r.m[versionKey{typ, id, version}]
	r.mu.Unlock()
	if !ok {
		return nil, false
	}
	res.Body = slices.Clone(res.Body)
	return &res, true
}

// remember keeps what the committed entries wrote: their changes and their
// versions.
func (db *DB) remember(written []*entry) {
	if len(written) == 0 {
		return
	}
	cs := make([]fhirstore.Change, len(written))
	for i, e := range written {
		cs[i] = e.change
		db.vers.add(fhirstore.Resource{Type: e.typ, ID: e.id, VersionID: e.change.VersionID,
			LastUpdated: e.change.Time, Deleted: e.body == nil, Body: e.body})
	}
	db.recent.add(cs)
}
