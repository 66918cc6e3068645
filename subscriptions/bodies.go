package subscriptions

import (
	"sync"
	"time"
)

// bodiesMax bounds the entries kept for activation; past it, a new body
// is not kept and its activation reads the store, as without. An entry
// older than bodiesTTL is dropped when room is needed: a body whose
// activation never came, or a mark whose body never came (a version
// written around the API, or activated again after a restart), would
// otherwise hold its place for good.
const (
	bodiesMax = 4096
	bodiesTTL = time.Minute
)

// bodies keeps the decoded body of each Subscription version just
// written as requested through the API, for the deliverer to activate it
// without reading it back (setStatus): the write hook has decoded it
// already. A body is taken once, and only for its exact version; the
// store's version check (If-Match) still guards the update.
//
// The matcher may meet a version in the feed, and a worker activate it,
// before the write hook keeps its body. A take that finds nothing leaves
// a mark, so that the body kept after it is not kept: it would never be
// taken. Marks and bodies never taken expire (bodiesTTL).
type bodies struct {
	mu    sync.Mutex
	m     map[string]keptBody
	swept time.Time // when keep last dropped the expired entries
}

// keptBody is a kept body, or with body nil the mark of a take that
// found none.
type keptBody struct {
	version string
	body    map[string]any
	at      time.Time
}

func newBodies() *bodies { return &bodies{m: map[string]keptBody{}} }

// keep holds body, version version of Subscription id, at time now; the
// caller gives it up (the taker may change it).
func (b *bodies) keep(id, version string, body map[string]any, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	k, ok := b.m[id]
	if ok && k.body == nil && k.version == version {
		delete(b.m, id) // taken already: the activation read it back
		return
	}
	if !ok && len(b.m) >= bodiesMax && now.Sub(b.swept) >= bodiesTTL/4 {
		b.swept = now
		for id, k := range b.m {
			if now.Sub(k.at) > bodiesTTL {
				delete(b.m, id)
			}
		}
	}
	if ok || len(b.m) < bodiesMax {
		b.m[id] = keptBody{version: version, body: body, at: now}
	}
}

// take returns and forgets the body kept for version of Subscription id,
// or nil, which it marks (see bodies). A body of another version is
// forgotten too.
func (b *bodies) take(id, version string, now time.Time) map[string]any {
	b.mu.Lock()
	defer b.mu.Unlock()
	k, ok := b.m[id]
	if ok && k.body != nil && k.version == version {
		delete(b.m, id)
		return k.body
	}
	if ok || len(b.m) < bodiesMax {
		b.m[id] = keptBody{version: version, at: now}
	}
	return nil
}

// forget drops what is kept for Subscription id (deleted, or no longer
// to be activated).
func (b *bodies) forget(id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.m, id)
}
