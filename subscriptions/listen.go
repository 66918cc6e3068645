package subscriptions

import (
	"context"
	"fmt"

	"github.com/fhirsub/fhirsub/fhirstore"
)

// Recorded is what a listener receives: newly recorded events of one
// subscription, in number order.
type Recorded struct {
	// Subscription is the subscription as known when the events were
	// recorded.
	Subscription *Subscription
	// Events are the new events.
	Events []fhirstore.Event
	// Ended, when not empty, tells why the listener's binding ended (the
	// subscription was deleted, or is no longer a websocket one): no
	// event follows, the listener has been removed, and Subscription and
	// Events are empty.
	Ended string
}

type listener struct{ fn func(Recorded) }

// Listen registers fn to receive the events recorded for a subscription
// whose channel is not rest-hook (websocket channels): fn runs on the
// matcher goroutine right after each change is recorded, so it must not
// block (hand the value to a buffered queue). Events recorded before
// Listen are read with EventsAfter; a binding does Listen first, then
// EventsAfter(last seen), and drops duplicates by number. When the
// subscription is deleted fn gets a last Recorded with Ended set (from the
// goroutine of the delete, or the matcher's when another node deleted it);
// so it does when an update makes it another channel's.
// The returned function removes the listener.
func (m *Manager) Listen(subscriptionID string, fn func(Recorded)) (cancel func()) {
	l := &listener{fn: fn}
	m.lmu.Lock()
	set := m.listeners[subscriptionID]
	if set == nil {
		set = map[*listener]struct{}{}
		m.listeners[subscriptionID] = set
	}
	set[l] = struct{}{}
	m.lmu.Unlock()
	return func() {
		m.lmu.Lock()
		defer m.lmu.Unlock()
		delete(m.listeners[subscriptionID], l)
		if len(m.listeners[subscriptionID]) == 0 {
			delete(m.listeners, subscriptionID)
		}
	}
}

// endListeners tells the listeners of a subscription that their
// bindings ended, and why, and removes them: a subscription created again
// with the same id is not theirs (it may have another owner), and its
// bindings are made anew.
func (m *Manager) endListeners(subscriptionID, why string) {
	m.lmu.Lock()
	set := m.listeners[subscriptionID]
	delete(m.listeners, subscriptionID)
	m.lmu.Unlock()
	for l := range set {
		l.fn(Recorded{Ended: why})
	}
}

// unbindChanged ends the websocket bindings of a subscription whose new
// version is no longer a websocket one (an update changed its channel):
// its events go to its new channel only.
func (m *Manager) unbindChanged(s *Subscription) {
	if s.ChannelType != ChannelWebsocket {
		m.endListeners(s.ID, "Subscription/"+s.ID+" is no longer a websocket subscription: its binding ended")
	}
}

func (m *Manager) notifyListeners(s *Subscription, evs []fhirstore.Event) {
	m.lmu.Lock()
	var fns []func(Recorded)
	for l := range m.listeners[s.ID] {
		fns = append(fns, l.fn)
	}
	m.lmu.Unlock()
	m.stats.handed(len(fns) * len(evs))
	for _, fn := range fns {
		fn(Recorded{Subscription: s, Events: evs})
	}
}

// EventsAfter returns the retained events of a subscription numbered
// after the given one, at most limit (0: all).
func (m *Manager) EventsAfter(ctx context.Context, subscriptionID string, after int64, limit int) ([]fhirstore.Event, error) {
	evs, err := m.events.Events(ctx, subscriptionID, after+1, 0, limit)
	if err != nil {
		return nil, fmt.Errorf("events of Subscription/%s: %w", subscriptionID, err)
	}
	return evs, nil
}

// ActivateBound makes a requested websocket subscription active when a
// socket binds to it, rather than when a delivery worker comes to it: an
// event recorded right after the bind would otherwise say "requested" in
// its notification (Inferno's websocket workflow writes at once after the
// handshake, and saw that about once in eight runs). It returns the
// subscription as now known: unchanged when it was not a requested
// websocket subscription, and the registry's version when a worker or a
// client changed it first (the write is conditional on the version).
func (m *Manager) ActivateBound(ctx context.Context, s *Subscription) (*Subscription, error) {
	if s.ChannelType != ChannelWebsocket || s.Status != StatusRequested {
		return s, nil
	}
	ns, err := m.dl.setStatus(ctx, s, StatusActive, "")
	if err != nil {
		return nil, err
	}
	if ns == nil { // changed meanwhile, or gone
		if cur, ok := m.Subscription(s.ID); ok {
			return cur, nil
		}
		return s, nil
	}
	return ns, nil
}
