package subscriptions

import (
	"context"

	"github.com/fhirsub/fhirsub/fhirstore"
)

// dispatch hands recorded events to the rest-hook queue and the listeners.
func (m *Manager) dispatch(ctx context.Context, evs []fhirstore.Event) {
	for i := 0; i < len(evs); {
		j := i + 1
		for j < len(evs) && evs[j].SubscriptionID == evs[i].SubscriptionID {
			j++
		}
		id := evs[i].SubscriptionID
		group := evs[i:j]
		i = j
		s, ok := m.Subscription(id)
		if !ok {
			continue
		}
		if s.ChannelType == ChannelRestHook {
			if m.owns(id) {
				last := group[len(group)-1]
				m.lag.recorded(id, group[0].Time, last.Number, last.Time)
				m.dl.lanes.offer(id, s.VersionID, group)
			}
			m.queue.Push(id)
			continue
		}
		m.notifyListeners(s, group)
		// events of channels without acknowledgement are delivered once
		// handed over; mark them so that retention can prune
		if last := group[len(group)-1].Number; last%64 == 0 {
			if err := m.events.SaveDelivery(ctx, fhirstore.SubscriptionState{SubscriptionID: id, Delivered: last}); err == nil {
				_ = m.events.Prune(ctx, id, m.cfg.Retention)
			}
		}
	}
}

// parse implements matchOutput.
func (m *Manager) parse(body map[string]any, res *fhirstore.Resource) (*Subscription, error) {
	return m.parser(false).parse(body, res)
}

// subscriptionChanged implements matchOutput: the subscription's
// deliverer looks at it.
func (m *Manager) subscriptionChanged(id string) {
	if s, ok := m.reg.get(id); ok {
		m.unbindChanged(s)
	}
	m.queue.Push(id)
}

// dropSubscription implements matchOutput for a deleted subscription:
// its websocket bindings end, and what the deliverer buffered for it goes
// too.
func (m *Manager) dropSubscription(ctx context.Context, id string) error {
	m.endListeners(id, "Subscription/"+id+" was deleted: its binding ended")
	return m.buf.drop(ctx, id)
}

// firstLane implements matchOutput, for the write hook too: the version
// 1 of a new id, created just now, has no delivery state and no event
// yet, and every event recorded from the moment it is filed is offered
// to the lane made here (see lane.synced), whichever of the hook and the
// matcher files it first. Only a single node: with Cluster.Leases the
// events of a subscription can be recorded by another node's matcher.
func (m *Manager) firstLane(s *Subscription, in fhirstore.Interaction) func() {
	if in != fhirstore.InteractionCreate || s.VersionID != "1" || s.ChannelType != ChannelRestHook || m.keeper != nil {
		return nil
	}
	return func() { m.dl.lanes.add(s.ID, newLane(s)) }
}

// topicCommitted implements matchOutput.
func (m *Manager) topicCommitted(res *fhirstore.Resource) error { return m.committedTopic(res, true) }
