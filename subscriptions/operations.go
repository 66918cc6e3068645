package subscriptions

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/fhirsub/fhirsub/conformance/smart"
	"github.com/fhirsub/fhirsub/fhirstore"
)

// Canonical operation definitions of the Backport IG.
const (
	OpStatusDefinition = "http://hl7.org/fhir/uv/subscriptions-backport/OperationDefinition/backport-subscription-status"
	OpEventsDefinition = "http://hl7.org/fhir/uv/subscriptions-backport/OperationDefinition/backport-subscription-events"
)

// maxEventsPage caps the events one $events answer carries.
const maxEventsPage = 1000

func notFound(id string) *Error {
	return &Error{Status: http.StatusNotFound, Code: "not-found", Message: fmt.Sprintf("Subscription/%s not found", id)}
}

// StatusBundle answers $status: a searchset Bundle with one query-status
// Parameters per subscription. ids limits the subscriptions (none: all;
// an unknown id is a 404 when it is the only one asked for), statuses
// filters them (OR). self is the request URL for the self link.
//
// Only subscriptions the caller's access (smart.FromContext) covers are
// reported (see CheckAccess): one id asked for that the caller may not see
// is a 403, others are left out.
func (m *Manager) StatusBundle(ctx context.Context, ids, statuses []string, self string) (map[string]any, error) {
	if len(ids) == 1 {
		if _, err := m.CheckAccess(ctx, ids[0]); err != nil {
			return nil, err
		}
	}
	caller := callerAccess(ctx)
	var subs []*Subscription
	if len(ids) == 0 {
		subs = m.reg.all()
	} else {
		subs = m.reg.pick(ids)
	}
	subs = slices.DeleteFunc(subs, func(s *Subscription) bool { return !ReadsEvents(caller, s) })
	slices.SortFunc(subs, func(a, b *Subscription) int { return strings.Compare(a.ID, b.ID) })
	entries := []any{}
	for _, s := range subs {
		if len(statuses) > 0 && !slices.Contains(statuses, string(s.Status)) {
			continue
		}
		st, err := m.buf.state(ctx, s.ID)
		if err != nil {
			return nil, err
		}
		params := m.statusParameters(s, Notice{Kind: KindQueryStatus, Status: s.Status, Count: st.EventCount,
			Content: s.Content, Error: cmpOr(s.Error, st.LastError)})
		entries = append(entries, map[string]any{
			"fullUrl":  "urn:uuid:" + params.ID,
			"resource": params,
			"search":   map[string]any{"mode": "match"},
		})
	}
	return map[string]any{
		"resourceType": "Bundle",
		"id":           m.cfg.NewID(),
		"type":         "searchset",
		"timestamp":    fhirstore.FormatInstant(m.now()),
		"total":        len(entries),
		"link":         []any{map[string]any{"relation": "self", "url": self}},
		"entry":        entries,
	}, nil
}

// EventsBundle answers $events: a query-event history Bundle with the
// retained events numbered from since to until (inclusive; 0 means no
// bound), at most 1000. content, when given, may lower the payload level
// (empty, id-only, full-resource); it never raises it. The caller's access
// (smart.FromContext) must cover the subscription's (else 403, see
// CheckAccess), and events whose focus the caller or the subscription may
// not see are left out, as are included resources either may not see
// (Notice.Readers).
func (m *Manager) EventsBundle(ctx context.Context, id string, since, until int64, content string) (map[string]any, error) {
	s, err := m.CheckAccess(ctx, id)
	if err != nil {
		return nil, err
	}
	caller := callerAccess(ctx)
	level := s.Content
	if content != "" {
		c := Content(content)
		switch c {
		case ContentEmpty, ContentIDOnly, ContentFullResource:
		default:
			return nil, &Error{Status: http.StatusBadRequest, Code: "invalid", Element: "content",
				Message: fmt.Sprintf("content %q is not empty, id-only or full-resource", content)}
		}
		if c.rank() < level.rank() {
			level = c
		}
	}
	if since < 0 || until < 0 {
		return nil, &Error{Status: http.StatusBadRequest, Code: "invalid", Message: "event numbers must not be negative"}
	}
	st, err := m.buf.state(ctx, id)
	if err != nil {
		return nil, err
	}
	var evs []fhirstore.Event
	if until == 0 || since <= until {
		evs, err = m.events.Events(ctx, id, max(since, 1), until, maxEventsPage)
		if err != nil {
			return nil, fmt.Errorf("events of Subscription/%s: %w", id, err)
		}
	}
	kept := evs[:0:0]
	for _, ev := range evs {
		ok, err := m.eventVisible(ctx, ev, caller, s.Access)
		if err != nil {
			return nil, err
		}
		if ok {
			kept = append(kept, ev)
		}
	}
	evs = kept
	b, err := m.Notification(ctx, s, Notice{Kind: KindQueryEvent, Status: s.Status, Count: st.EventCount, Events: evs, Content: level,
		Readers: []*smart.Access{caller}})
	if err != nil {
		return nil, err
	}
	return bundleMap(b)
}

// bundleMap is b as the JSON object it encodes to, the form the REST
// layer answers with. $events is rare; the channels send the typed Bundle.
func bundleMap(b *Bundle) (map[string]any, error) {
	data, err := EncodeBundle(b)
	if err != nil {
		return nil, err
	}
	out, err := fhirstore.Decode(data)
	if err != nil {
		return nil, fmt.Errorf("decode notification: %w", err)
	}
	return out, nil
}

// TopicCanonicals returns the canonical URLs of the topics subscriptions
// may name (status active), sorted.
func (m *Manager) TopicCanonicals() []string {
	var out []string
	for _, t := range m.topics.All() {
		if t.Status == "active" {
			out = append(out, t.URL)
		}
	}
	return out
}
