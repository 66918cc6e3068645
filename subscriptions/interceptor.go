package subscriptions

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/fhirsub/fhirsub/conformance/smart"
	"github.com/fhirsub/fhirsub/fhirstore"
	"github.com/fhirsub/fhirsub/topics"
)

// SubscriptionInterceptor returns the write hook of the Subscription type
// (web.Interceptor): it validates submissions and registers every committed
// subscription with the matcher before the client gets its answer.
func (m *Manager) SubscriptionInterceptor() *SubscriptionHook { return &SubscriptionHook{m: m} }

// TopicInterceptor returns the write hook of the SubscriptionTopic type
// (web.Interceptor): it validates topics, refuses to delete a topic in use
// and keeps the registry up to date.
func (m *Manager) TopicInterceptor() *TopicHook { return &TopicHook{m: m} }

// SubscriptionHook is the Subscription write hook.
type SubscriptionHook struct{ m *Manager }

// Validate checks a submitted Subscription and normalises it: a client's
// "active" becomes "requested" (only the server activates), the
// server-owned error element is dropped, and ExtAccess is stamped with the
// access of the caller (smart.FromContext; none counts as Full) on create,
// or kept from the stored version on update. A caller whose access does not
// cover the stored one's may not update (403); a client value of ExtAccess
// other than the stored one is refused (422); criteria on types the
// caller's access cannot read are refused (403). Secrets sent back masked
// (Masked, as every rendering shows them) keep their stored values.
func (h *SubscriptionHook) Validate(ctx context.Context, body map[string]any, current *fhirstore.Resource) error {
	caller := callerAccess(ctx)
	owner, stored := caller, ""
	if current != nil {
		var err error
		if owner, stored, err = ownership(caller, current); err != nil {
			return err
		}
	}
	if err := takeClientAccess(body, stored); err != nil {
		return err
	}
	if err := h.m.knowTopic(ctx, body); err != nil {
		return err
	}
	if err := restoreSecrets(body, current); err != nil {
		return err
	}
	s, err := h.m.parser(true).parse(body, nil)
	if err != nil {
		return err
	}
	if err := readable(owner, s); err != nil {
		return err
	}
	if current == nil {
		if err := h.m.reg.hold(owner, h.m.cfg.MaxPerOwner, h.m.now()); err != nil {
			return err
		}
	}
	body["status"] = string(s.Status)
	delete(body, "error")
	if stored == "" {
		if stored, err = owner.EncodeString(); err != nil {
			return err
		}
	}
	stampAccess(body, stored)
	return nil
}

// readable refuses a subscription that could never notify anything under
// access a: classic criteria on a type it cannot read, or a topic none of
// whose resource types it can read.
func readable(a *smart.Access, s *Subscription) error {
	if s.Criteria != nil {
		if !a.CanRead(s.Criteria.Type) {
			return forbidden("the token's scopes do not allow reading %s, the type of Subscription.criteria", s.Criteria.Type)
		}
		return nil
	}
	for _, rt := range s.Topic.ResourceTypes() {
		if a.CanRead(rt) {
			return nil
		}
	}
	return forbidden("the token's scopes allow reading none of the resource types of topic %s", s.TopicURL())
}

// Committed registers the committed version with the matcher (it matches
// changes committed after this point) and queues its handshake; a delete
// forgets the subscription and its events.
func (h *SubscriptionHook) Committed(ctx context.Context, res *fhirstore.Resource, in fhirstore.Interaction) error {
	return h.m.committedSubscription(ctx, res, in)
}

func (m *Manager) committedSubscription(ctx context.Context, res *fhirstore.Resource, in fhirstore.Interaction) error {
	if in == fhirstore.InteractionDelete || res.Deleted {
		m.bodies.forget(res.ID)
		m.reg.drop(res.ID, res.VersionID)
		if err := m.dropSubscription(ctx, res.ID); err != nil {
			return fmt.Errorf("drop events of Subscription/%s: %w", res.ID, err)
		}
		return nil
	}
	created := in == fhirstore.InteractionCreate
	s, filed := m.reg.get(res.ID)
	switch {
	case filed && s.VersionID == res.VersionID:
		// the matcher met this version in the feed first (the two race):
		// it parsed it, filed it, and kept its body for the activation
		// (feedSubscription)
		if created {
			m.reg.releaseQuota(s.Access)
		}
	case filed && versionNumber(s.VersionID) > versionNumber(res.VersionID):
		// and the deliverer has written a newer one already (the
		// activation): nothing left to do for this one
		if created {
			m.reg.releaseQuota(s.Access) // the creator's, kept by every version
		}
		return nil
	default:
		var err error
		if s, err = m.registerCommitted(ctx, res, created, in); err != nil {
			return err
		}
	}
	if s.Status == StatusRequested && res.VersionID != "1" {
		// re-activation: a fresh handshake, no backoff left from before
		// (version 1 is a new id, with no delivery state yet)
		st, err := m.buf.state(ctx, s.ID)
		if err != nil {
			return err
		}
		if st.ConsecutiveFailures > 0 || !st.NextAttempt.IsZero() {
			st.ConsecutiveFailures, st.NextAttempt = 0, time.Time{}
			if err := m.buf.now(ctx, st); err != nil {
				return fmt.Errorf("reset delivery state of Subscription/%s: %w", s.ID, err)
			}
		}
		m.sched.SetNext(s.ID, time.Time{})
	}
	m.unbindChanged(s)
	m.sched.Touch(s.ID, m.now())
	m.queue.Push(s.ID)
	return nil
}

// registerCommitted parses a committed version the registry does not
// have yet and files it, its body kept for the activation of a requested
// one.
func (m *Manager) registerCommitted(ctx context.Context, res *fhirstore.Resource, created bool, in fhirstore.Interaction) (*Subscription, error) {
	body, err := fhirstore.Decode(res.Body)
	if err != nil {
		return nil, fmt.Errorf("decode Subscription/%s: %w", res.ID, err)
	}
	s, err := m.parser(false).parse(body, res)
	if err != nil {
		return nil, fmt.Errorf("parse committed Subscription/%s: %w", res.ID, err)
	}
	since, err := m.store.LastSeq(ctx)
	if err != nil {
		return nil, fmt.Errorf("register Subscription/%s: %w", res.ID, err)
	}
	if s.Status == StatusRequested {
		m.bodies.keep(s.ID, s.VersionID, body, m.now()) // before the deliverer can take it (bodies)
	}
	m.reg.putCreated(s, since, created, m.firstLane(s, in))
	return s, nil
}

// TopicHook is the SubscriptionTopic write hook.
type TopicHook struct{ m *Manager }

// Validate parses the topic; an invalid one is refused with the element
// at fault. A new version of a topic in use may not change its url, nor
// refuse a filter of a subscription on it (409): such a subscription would
// be left on the old version until a restart, then on none.
func (h *TopicHook) Validate(ctx context.Context, body map[string]any, current *fhirstore.Resource) error {
	t, err := topics.Parse(body)
	if err != nil {
		return topicError(err)
	}
	if current != nil {
		oldURL := h.m.reg.topicURL(current.ID)
		if oldURL != "" && oldURL != t.URL && h.m.reg.topicInUse(oldURL) {
			return &Error{Status: http.StatusConflict, Code: "conflict", Element: "SubscriptionTopic.url",
				Message: fmt.Sprintf("topic %s is used by subscriptions: its url cannot change", oldURL)}
		}
		if oldURL != "" {
			if id, err := h.m.reg.refusedBy(oldURL, t); id != "" {
				return &Error{Status: http.StatusConflict, Code: "conflict", Element: "SubscriptionTopic.canFilterBy",
					Message: fmt.Sprintf("topic %s is used by Subscription/%s, whose filter this version does not allow (%v): change or switch off the subscription first",
						oldURL, id, err)}
			}
		}
	}
	return nil
}

// Committed puts the topic into the registry (or removes it on delete);
// its subscriptions move to the new version when the matcher meets it in
// the change feed (see committedTopic).
func (h *TopicHook) Committed(ctx context.Context, res *fhirstore.Resource, in fhirstore.Interaction) error {
	return h.m.committedTopic(res, false)
}

// ValidateDelete refuses to delete a topic some subscription uses (409).
func (h *TopicHook) ValidateDelete(ctx context.Context, id string) error {
	url := h.m.reg.topicURL(id)
	if url != "" && h.m.reg.topicInUse(url) {
		return &Error{Status: http.StatusConflict, Code: "conflict", Element: "SubscriptionTopic",
			Message: fmt.Sprintf("topic %s is used by subscriptions: delete or switch them off first", url)}
	}
	return nil
}

func topicError(err error) error {
	var ve *topics.ValidationError
	if errors.As(err, &ve) {
		return &Error{Status: http.StatusUnprocessableEntity, Code: "invalid", Element: ve.Element, Message: ve.Message}
	}
	return &Error{Status: http.StatusUnprocessableEntity, Code: "invalid", Message: err.Error()}
}

// committedTopic applies a committed topic version: the registry of
// topics knows it at once, so that a Subscription written next may name
// it. The subscriptions on the topic move to it (followTopic) only with
// inFeed, when the matcher meets the version in the change feed: changes
// committed before the version are then matched by the version they were
// committed under, those after by the new one, whichever path applied the
// version first.
// restoreTopic makes the topic registry say for url what the stored
// SubscriptionTopic resources still say: url is removed, then the topic of
// each remaining resource with that url is put again in the order they
// were applied, so that the latest stays current. Several resources may
// share a url (a new version of a topic posted as a new resource): the
// deletion of one, or its move to another url, leaves the others.
func (m *Manager) restoreTopic(url string) {
	m.topics.Remove(url)
	for _, t := range m.reg.topicsNamed(url) {
		m.topics.Put(t)
	}
}

func (m *Manager) committedTopic(res *fhirstore.Resource, inFeed bool) error {
	v := versionNumber(res.VersionID)
	known := m.reg.newerTopic(res.ID, v)
	follow := inFeed && m.reg.newerFollowed(res.ID, v)
	if !known && !follow {
		return nil // a version older than the one applied (met again in the feed)
	}
	if res.Deleted {
		if url := m.reg.forgetTopic(res.ID); url != "" && known {
			m.restoreTopic(url)
		}
		return nil
	}
	body, err := fhirstore.Decode(res.Body)
	if err != nil {
		return fmt.Errorf("decode SubscriptionTopic/%s: %w", res.ID, err)
	}
	t, err := topics.Parse(body)
	if err != nil {
		return fmt.Errorf("parse SubscriptionTopic/%s: %w", res.ID, err)
	}
	if known {
		oldURL := m.reg.topicURL(res.ID)
		m.topics.Put(t)
		m.reg.nameTopic(res.ID, t)
		if oldURL != "" && oldURL != t.URL {
			m.restoreTopic(oldURL) // the URL this resource no longer says
		}
	}
	if follow {
		m.reg.followTopic(t, m.log)
	}
	return nil
}
