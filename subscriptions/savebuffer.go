package subscriptions

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/fhirsub/fhirsub/fhirstore"
)

// The delivery state a successful rest-hook request leaves (the delivered
// number moved, failures cleared) is saved behind the delivery: a save
// of its own per notification was a commit per notification, the largest
// cost of a delivery once the events came from memory (lanes). The states
// wait in a stateBuffer at most flushEvery and are stored together, one
// commit for all, and a subscription notified several times meanwhile
// costs one row: 100 ms rather than 10 cut the server's CPU per rest-hook
// delivery by 7–12% (100 subscriptions each matching 40 writes/s,
// cmd/fhirsub-load/PROFILE.md). What a crash loses is the delivered numbers
// of those 100 ms: those notifications are sent again (rest-hook is at
// least once), as one in flight at the crash always was. Failures, status
// changes and the saves of other parts of the server are not buffered.
const (
	flushEvery = 100 * time.Millisecond
	flushAt    = 256 // pending states that start a flush at once
)

// batchSaver is the optional EventStore method that stores several
// delivery states in one commit (the SQLite store has it).
type batchSaver interface {
	SaveDeliveries(ctx context.Context, states []fhirstore.SubscriptionState) error
}

// stateBuffer holds the delivery states saved behind (later) until a
// flush stores them. Its run loop flushes flushEvery after a state waits
// (sooner past flushAt) and sleeps while none does; now, drop and the
// final flush keep the order of the saves of one subscription.
type stateBuffer struct {
	events fhirstore.EventStore
	log    *slog.Logger

	fmu     sync.Mutex // held by a flush and by the saves that must not pass one
	mu      sync.Mutex // guards pending and storing
	pending map[string]fhirstore.SubscriptionState
	// storing holds what the flush in progress took from pending until
	// the store has it. Until then those states are still buffered
	// (holds, state): a partition handed over, or a state read, while
	// the flush wrote would otherwise find the older stored state and
	// send its events again.
	storing map[string]fhirstore.SubscriptionState
	waiting chan struct{} // a state waits (the buffer was empty)
	full    chan struct{} // flushAt states wait
}

func newStateBuffer(events fhirstore.EventStore, log *slog.Logger) *stateBuffer {
	return &stateBuffer{events: events, log: log, pending: map[string]fhirstore.SubscriptionState{},
		storing: map[string]fhirstore.SubscriptionState{},
		waiting: make(chan struct{}, 1), full: make(chan struct{}, 1)}
}

// signal sends on a channel of capacity 1 without blocking.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// later buffers st; a newer state of the same subscription replaces it.
func (b *stateBuffer) later(st fhirstore.SubscriptionState) {
	b.mu.Lock()
	b.pending[st.SubscriptionID] = st
	n := len(b.pending)
	b.mu.Unlock()
	if n == 1 {
		signal(b.waiting)
	}
	if n >= flushAt {
		signal(b.full)
	}
}

// now stores st at once, in place of what is buffered for its
// subscription (which it supersedes).
func (b *stateBuffer) now(ctx context.Context, st fhirstore.SubscriptionState) error {
	b.fmu.Lock()
	defer b.fmu.Unlock()
	b.mu.Lock()
	delete(b.pending, st.SubscriptionID)
	b.mu.Unlock()
	return b.events.SaveDelivery(ctx, st)
}

// drop forgets what is buffered for a subscription and deletes its events
// and state (a deleted subscription's state must not come back).
func (b *stateBuffer) drop(ctx context.Context, id string) error {
	b.fmu.Lock()
	defer b.fmu.Unlock()
	b.mu.Lock()
	delete(b.pending, id)
	b.mu.Unlock()
	return b.events.DropSubscription(ctx, id)
}

// state returns a subscription's delivery state: the stored one (zero
// values when none is stored yet) under the delivery fields buffered for
// it, which are newer. Every reader of a delivery state goes through it.
func (b *stateBuffer) state(ctx context.Context, id string) (fhirstore.SubscriptionState, error) {
	// What is buffered is taken before the read too: a flush that ends
	// during the read leaves nothing buffered after it, and the read may
	// have come before the flush's write.
	before, had := b.buffered(id)
	st, err := b.events.State(ctx, id)
	if errors.Is(err, fhirstore.ErrNoState) {
		st, err = fhirstore.SubscriptionState{SubscriptionID: id}, nil
	}
	if err != nil {
		return st, fmt.Errorf("read delivery state: %w", err)
	}
	if !b.overlay(&st) && had {
		merge(&st, before)
	}
	return st, nil
}

// buffered returns the state buffered for subscription id: waiting for a
// flush, or being stored by one.
func (b *stateBuffer) buffered(id string) (fhirstore.SubscriptionState, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if st, ok := b.pending[id]; ok {
		return st, true
	}
	st, ok := b.storing[id]
	return st, ok
}

// overlay puts the delivery fields buffered for st's subscription, newer
// than the stored ones, over st (EventCount stays the store's), and
// reports whether there were any.
func (b *stateBuffer) overlay(st *fhirstore.SubscriptionState) bool {
	p, ok := b.buffered(st.SubscriptionID)
	if ok {
		merge(st, p)
	}
	return ok
}

// merge puts the buffered state p over the stored st: p's delivery
// fields, the store's EventCount, the higher delivered number.
func merge(st *fhirstore.SubscriptionState, p fhirstore.SubscriptionState) {
	p.EventCount = st.EventCount
	p.Delivered = max(p.Delivered, st.Delivered)
	*st = p
}

// holds reports whether a state buffered for a subscription pred accepts
// waits for a flush or is being stored by one.
func (b *stateBuffer) holds(pred func(id string) bool) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, m := range []map[string]fhirstore.SubscriptionState{b.pending, b.storing} {
		for id := range m {
			if pred(id) {
				return true
			}
		}
	}
	return false
}

// flush stores every buffered state. States that could not be stored go
// back to the buffer unless a newer one replaced them meanwhile.
func (b *stateBuffer) flush(ctx context.Context) error {
	b.fmu.Lock()
	defer b.fmu.Unlock()
	b.mu.Lock()
	if len(b.pending) == 0 {
		b.mu.Unlock()
		return nil
	}
	batch := make([]fhirstore.SubscriptionState, 0, len(b.pending))
	for _, st := range b.pending {
		batch = append(batch, st)
	}
	b.storing, b.pending = b.pending, b.storing // storing was empty (fmu)
	b.mu.Unlock()
	err := b.store(ctx, batch)
	b.mu.Lock()
	if err != nil {
		for _, st := range batch {
			if _, newer := b.pending[st.SubscriptionID]; !newer {
				b.pending[st.SubscriptionID] = st
			}
		}
	}
	clear(b.storing)
	b.mu.Unlock()
	return err
}

func (b *stateBuffer) store(ctx context.Context, batch []fhirstore.SubscriptionState) error {
	if bs, ok := b.events.(batchSaver); ok {
		return bs.SaveDeliveries(ctx, batch)
	}
	for _, st := range batch {
		if err := b.events.SaveDelivery(ctx, st); err != nil {
			return err
		}
	}
	return nil
}

// run flushes flushEvery after a state starts waiting (at once past
// flushAt) until ctx ends; an idle buffer costs no wake-up. The final
// flush is the caller's, once the workers stopped.
func (b *stateBuffer) run(ctx context.Context) {
	t := time.NewTimer(flushEvery)
	t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.waiting:
		}
		t.Reset(flushEvery) // let the state gather company
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-b.full:
			t.Stop()
		}
		if err := b.flush(ctx); err != nil && ctx.Err() == nil {
			b.log.Warn("save delivery states", "err", err)
		}
		if b.waits() {
			signal(b.waiting) // added during the flush, or put back by a failed one
		}
	}
}

// waits reports whether a state waits for a flush.
func (b *stateBuffer) waits() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.pending) > 0
}
