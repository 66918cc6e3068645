package subscriptions

import (
	"context"
	"errors"
	"fmt"

	"github.com/fhirsub/fhirsub/fhirstore"
)

// Several nodes share one store, and each learns of the others' writes
// from the change feed, a moment later. So that a topic or subscription
// written through one node is usable through every node at once, a name
// this node does not know is read through to the store before it is
// refused.

// lookup returns the subscription id, reading it from the store when this
// node has not met it in the feed yet.
func (m *Manager) lookup(ctx context.Context, id string) (*Subscription, bool) {
	if s, ok := m.Subscription(id); ok {
		return s, true
	}
	if !fhirstore.ValidID(id) {
		return nil, false
	}
	since, err := m.store.LastSeq(ctx)
	if err != nil {
		return nil, false
	}
	res, err := m.store.Read(ctx, "Subscription", id)
	if err != nil {
		if !errors.Is(err, fhirstore.ErrNotFound) && !errors.Is(err, fhirstore.ErrGone) {
			m.log.Warn("read through Subscription", "id", id, "err", err)
		}
		return nil, false
	}
	body, err := fhirstore.Decode(res.Body)
	if err != nil {
		return nil, false
	}
	s, err := m.parser(false).parse(body, res)
	if err != nil {
		m.log.Warn("stored Subscription ignored", "id", id, "err", err)
		return nil, false
	}
	m.reg.put(s, since) // the feed brings the same version later: no change
	cur, ok := m.reg.get(id)
	if !ok {
		return nil, false
	}
	m.queue.Push(id)
	return cur, true
}

// readTopics loads the stored topics this node has not met in the feed
// yet (older versions than the known ones are ignored).
func (m *Manager) readTopics(ctx context.Context) error {
	var errs []error
	err := m.each(ctx, "SubscriptionTopic", func(res *fhirstore.Resource, _ map[string]any) {
		if err := m.committedTopic(res, false); err != nil {
			errs = append(errs, err)
		}
	})
	if err != nil {
		return fmt.Errorf("read through SubscriptionTopics: %w", err)
	}
	for _, e := range errs {
		m.log.Warn("stored SubscriptionTopic ignored", "err", e)
	}
	return nil
}

// knowTopic makes sure the topic a submitted Subscription names is in the
// registry if the store has it.
func (m *Manager) knowTopic(ctx context.Context, body map[string]any) error {
	criteria, _ := body["criteria"].(string)
	if !isAbsoluteURL(criteria) {
		return nil
	}
	if _, ok := m.topics.Get(criteria); ok {
		return nil
	}
	return m.readTopics(ctx)
}
