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
//
// The keys wait for eviction in a ring, oldest at head: letting the
// oldest go moves nothing. (A slice shifted down by one on each add
// copied 1,023 keys a write, ~2% of the server's CPU under creates.)
type recentVersions struct {
	mu    sync.Mutex
	m     map[versionKey]fhirstore.Resource
	ring  []versionKey // versionsMax long once used; held keys at head, head+1, … (mod versionsMax)
	head  int
	n     int // keys in the ring, one for each entry of m
	bytes int // of the bodies held
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
		r.ring = make([]versionKey, versionsMax)
	}
	k := versionKey{res.Type, res.ID, res.VersionID}
	if old, ok := r.m[k]; ok { // held already: the same version, its body again
		r.bytes += len(res.Body) - len(old.Body)
		r.m[k] = res
		return
	}
	for drop := r.bytes + len(res.Body) - versionsBytes; r.n > 0 && (r.n >= versionsMax || drop > 0); {
		old := r.ring[r.head]
		r.ring[r.head] = versionKey{} // its strings can go
		r.head = (r.head + 1) % versionsMax
		r.n--
		size := len(r.m[old].Body)
		r.bytes -= size
		drop -= size
		delete(r.m, old)
	}
	r.m[k] = res
	r.ring[(r.head+r.n)%versionsMax] = k
	r.n++
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
