package wsbridge

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/fhirsub/fhirsub/channels"
	"github.com/fhirsub/fhirsub/conformance/smart"
	"github.com/fhirsub/fhirsub/fhirstore"
	"github.com/fhirsub/fhirsub/subscriptions"
)

// wsBinding is one Backport binding: a subscription bound on one
// connection. Events arrive from the matcher (onRecorded) into pending; one
// worker at a time turns them into Bundles.
type wsBinding struct {
	b    *Bridge
	id   string
	sink channels.Sink
	acc  *smart.Access // the binding token's: every Bundle is limited to it too

	mu       sync.Mutex
	sub      *subscriptions.Subscription // latest known version
	pending  []fhirstore.Event           // recorded, not yet sent
	live     bool                        // handshake queued: the workers may send
	closed   bool                        // unbound or failed
	lastSent int64                       // highest event number sent (or covered by the handshake)
	lastComm time.Time                   // last Bundle queued
	beatDue  bool                        // a heartbeat is wanted
	queued   bool                        // in the bridge's work queue
	running  bool                        // a worker is on it
	again    bool                        // scheduled while running
}

// BindBackport implements channels.BackportBinder. It listens first, then
// reads the events recorded since the count reported by the handshake, so
// that none recorded after the bind is lost (duplicates are dropped by
// number).
func (b *Bridge) BindBackport(ctx context.Context, id string, acc *smart.Access, sink channels.Sink) (func(), error) {
	s, err := b.check(id, acc)
	if err != nil {
		return nil, err
	}
	if s, err = b.m.ActivateBound(ctx, s); err != nil {
		return nil, err
	}
	st, err := b.m.State(ctx, id)
	if err != nil {
		return nil, err
	}
	bd := &wsBinding{b: b, id: id, sink: sink, acc: acc, sub: s, lastSent: st.EventCount, lastComm: time.Now()}
	stop := b.m.Listen(id, bd.onRecorded)
	cancel := func() {
		stop()
		bd.stop()
	}
	if err := b.stillThere(id); err != nil {
		cancel()
		return nil, err
	}
	hs, err := b.m.Notification(ctx, s, subscriptions.Notice{Kind: subscriptions.KindHandshake, Status: s.Status, Count: st.EventCount})
	if err != nil {
		cancel()
		return nil, err
	}
	data, err := subscriptions.EncodeBundle(hs)
	if err != nil {
		cancel()
		return nil, err
	}
	sink.Send(data, 0)
	missed, err := b.m.EventsAfter(ctx, id, st.EventCount, b.cfg.ReplayLimit)
	if err != nil {
		cancel()
		return nil, err
	}
	b.mu.Lock()
	b.bindings[bd] = struct{}{}
	b.mu.Unlock()
	bd.mu.Lock()
	if bd.closed { // deleted since the check, or overflowed already
		bd.mu.Unlock()
		cancel()
		if err := b.stillThere(id); err != nil {
			return nil, err
		}
		return nil, errors.New("the binding was closed while it was made (slow consumer)")
	}
	bd.pending = append(missed, bd.pending...)
	bd.live = true
	work := len(bd.pending) > 0
	bd.mu.Unlock()
	if work {
		bd.schedule()
	}
	return cancel, nil
}

// onRecorded runs on the matcher goroutine: it only appends and schedules.
func (bd *wsBinding) onRecorded(r subscriptions.Recorded) {
	if r.Ended != "" {
		if bd.stop() {
			bd.sink.End(r.Ended)
		}
		return
	}
	bd.mu.Lock()
	if bd.closed {
		bd.mu.Unlock()
		return
	}
	bd.sub = r.Subscription
	if len(bd.pending)+len(r.Events) > bd.b.cfg.MaxPending {
		bd.closed, bd.pending = true, nil
		bd.mu.Unlock()
		bd.b.log.Info("websocket binding overflowed: slow consumer", "subscription", bd.id)
		bd.sink.Close(channels.CloseTryAgainLater, channels.ReasonSlowConsumer)
		return
	}
	bd.pending = append(bd.pending, r.Events...)
	live := bd.live
	bd.mu.Unlock()
	if live {
		bd.schedule()
	}
}

// stop ends the binding on the server's side: nothing more is sent on it,
// heartbeats included. It reports whether the binding was open.
func (bd *wsBinding) stop() bool {
	bd.mu.Lock()
	open := !bd.closed
	bd.closed, bd.pending = true, nil
	bd.mu.Unlock()
	bd.b.mu.Lock()
	delete(bd.b.bindings, bd)
	bd.b.mu.Unlock()
	return open
}

// schedule puts the binding in the work queue unless it is there or being
// worked on (it is then re-queued when the worker is done).
func (bd *wsBinding) schedule() {
	bd.mu.Lock()
	switch {
	case bd.closed || bd.queued:
		bd.mu.Unlock()
		return
	case bd.running:
		bd.again = true
		bd.mu.Unlock()
		return
	}
	bd.queued = true
	bd.mu.Unlock()
	bd.b.push(bd)
}

func (b *Bridge) push(bd *wsBinding) {
	b.qmu.Lock()
	b.queue = append(b.queue, bd)
	b.qmu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// pop waits for a binding with work; nil when the bridge stops.
func (b *Bridge) pop() *wsBinding {
	for {
		b.qmu.Lock()
		if len(b.queue) > 0 {
			bd := b.queue[0]
			b.queue[0] = nil
			b.queue = b.queue[1:]
			more := len(b.queue) > 0
			b.qmu.Unlock()
			if more {
				select {
				case b.wake <- struct{}{}:
				default:
				}
			}
			return bd
		}
		b.qmu.Unlock()
		select {
		case <-b.ctx.Done():
			return nil
		case <-b.wake:
		}
	}
}

func (b *Bridge) workLoop() {
	for {
		bd := b.pop()
		if bd == nil {
			return
		}
		bd.mu.Lock()
		bd.queued, bd.running = false, true
		bd.mu.Unlock()
		bd.work(b.ctx)
		bd.mu.Lock()
		bd.running = false
		again := bd.again && !bd.closed
		bd.again = false
		bd.mu.Unlock()
		if again {
			bd.schedule()
		}
	}
}

// work sends the pending events (backport-max-count per Bundle, in number
// order, each number once), or a heartbeat when one is due and no event
// went out.
func (bd *wsBinding) work(ctx context.Context) {
	bd.mu.Lock()
	if bd.closed {
		bd.mu.Unlock()
		return
	}
	evs, s, last, beat := bd.pending, bd.sub, bd.lastSent, bd.beatDue
	bd.pending, bd.beatDue = nil, false
	bd.mu.Unlock()

	slices.SortFunc(evs, func(a, b fhirstore.Event) int { return cmp.Compare(a.Number, b.Number) })
	evs = slices.DeleteFunc(evs, func(e fhirstore.Event) bool { return e.Number <= last })
	evs = slices.CompactFunc(evs, func(a, b fhirstore.Event) bool { return a.Number == b.Number })
	batch := cmp.Or(int(s.MaxCount), subscriptions.DefaultMaxCount) // as rest-hook: events that waited go together
	sent := false
	for len(evs) > 0 {
		n := min(batch, len(evs))
		chunk := evs[:n]
		evs = evs[n:]
		top := chunk[n-1].Number
		if !bd.send(ctx, s, subscriptions.Notice{Kind: subscriptions.KindEvent, Status: s.Status, Count: top, Events: chunk}) {
			return
		}
		last, sent = top, true
	}
	if beat && !sent {
		st, err := bd.b.m.State(ctx, bd.id)
		if err != nil {
			bd.fail(err)
			return
		}
		if !bd.send(ctx, s, subscriptions.Notice{Kind: subscriptions.KindHeartbeat, Status: s.Status, Count: st.EventCount, Error: s.Error}) {
			return
		}
		sent = true
	}
	if sent {
		bd.mu.Lock()
		bd.lastSent = max(bd.lastSent, last)
		bd.lastComm = time.Now()
		bd.mu.Unlock()
	}
}

// send builds and queues one Bundle; false when the binding is over.
func (bd *wsBinding) send(ctx context.Context, s *subscriptions.Subscription, n subscriptions.Notice) bool {
	n.Readers = append(n.Readers, bd.acc)
	bundle, err := bd.b.m.Notification(ctx, s, n)
	if err != nil {
		bd.fail(err)
		return false
	}
	data, err := subscriptions.EncodeBundle(bundle)
	if err != nil {
		bd.fail(err)
		return false
	}
	if !bd.sink.Send(data, 0) {
		bd.mu.Lock()
		bd.closed = true
		bd.mu.Unlock()
		return false
	}
	return true
}

// fail closes the connection after a notification could not be built
// (the client reconnects and fetches what it missed with $events).
func (bd *wsBinding) fail(err error) {
	if bd.b.ctx.Err() != nil {
		return // shutting down
	}
	bd.b.log.Error("websocket notification failed", "subscription", bd.id, "err", err)
	bd.mu.Lock()
	bd.closed = true
	bd.mu.Unlock()
	bd.sink.Close(channels.CloseInternalError, channels.ReasonNotificationFailed)
}

// heartbeatLoop marks bindings whose subscription has a heartbeat period
// and has been silent that long.
func (b *Bridge) heartbeatLoop() {
	t := time.NewTicker(b.cfg.HeartbeatTick)
	defer t.Stop()
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-t.C:
		}
		b.mu.Lock()
		all := make([]*wsBinding, 0, len(b.bindings))
		for bd := range b.bindings {
			all = append(all, bd)
		}
		b.mu.Unlock()
		now := time.Now()
		for _, bd := range all {
			s, ok := b.m.Subscription(bd.id)
			if !ok || s.Heartbeat <= 0 || s.Status == subscriptions.StatusOff {
				continue
			}
			bd.mu.Lock()
			due := bd.live && !bd.closed && now.Sub(bd.lastComm) >= s.Heartbeat
			if due {
				bd.beatDue, bd.lastComm, bd.sub = true, now, s
			}
			bd.mu.Unlock()
			if due {
				bd.schedule()
			}
		}
	}
}
