package channels

import "sync"

// endedSet records the bindings of one connection that the server ended
// (their subscription was deleted), from the goroutine that ended them,
// for the connection's reader goroutine, which alone touches its bindings,
// to forget before it binds again: a later bind of the same id then binds
// anew, and is refused if the subscription is gone.
type endedSet struct {
	mu  sync.Mutex
	ids []string
}

func (e *endedSet) add(id string) {
	e.mu.Lock()
	e.ids = append(e.ids, id)
	e.mu.Unlock()
}

// forget ends, in bound, each binding recorded since the last call.
func (e *endedSet) forget(bound map[string]func()) {
	e.mu.Lock()
	ids := e.ids
	e.ids = nil
	e.mu.Unlock()
	for _, id := range ids {
		if cancel, ok := bound[id]; ok {
			cancel()
			delete(bound, id)
		}
	}
}
