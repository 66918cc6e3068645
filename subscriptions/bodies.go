package subscriptions

import "sync"

// bodiesMax bounds the bodies kept for activation; past it, a new one
// is not kept and its activation reads the store, as without.
const bodiesMax = 4096

// bodies keeps the decoded body of each Subscription version just
// written as requested through the API, for the deliverer to activate it
// without reading it back (setStatus): the write hook has decoded it
// already. A body is taken once, and only for its exact version; the
// store's version check (If-Match) still guards the update.
type bodies struct {
	mu sync.Mutex
	m  map[string]keptBody
}

type keptBody struct {
	version string
	body    map[string]any
}

func newBodies() *bodies { return &bodies{m: map[string]keptBody{}} }

// keep holds body, version version of Subscription id; the caller gives
// it up (the taker may change it).
func (b *bodies) keep(id, version string, body map[string]any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.m[id]; ok || len(b.m) < bodiesMax {
		b.m[id] = keptBody{version: version, body: body}
	}
}

// take returns and forgets the body kept for version of Subscription id,
// or nil. A body of another version is forgotten too.
func (b *bodies) take(id, version string) map[string]any {
	b.mu.Lock()
	defer b.mu.Unlock()
	k, ok := b.m[id]
	if !ok {
		return nil
	}
	delete(b.m, id)
	if k.version != version {
		return nil
	}
	return k.body
}

// forget drops what is kept for Subscription id (deleted, or no longer
// to be activated).
func (b *bodies) forget(id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.m, id)
}
