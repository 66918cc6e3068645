package subscriptions

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/fhirsub/fhirsub/conformance/search"
	"github.com/fhirsub/fhirsub/conformance/smart"
	"github.com/fhirsub/fhirsub/fhirstore"
)

// Kind is the type of a notification (the subscription-notification-type
// codes).
type Kind string

// The notification kinds.
const (
	KindHandshake   Kind = "handshake"
	KindHeartbeat   Kind = "heartbeat"
	KindEvent       Kind = "event-notification"
	KindQueryStatus Kind = "query-status"
	KindQueryEvent  Kind = "query-event"
)

// ProfileNotification is the profile of R4 notification Bundles.
const ProfileNotification = igStructure + "backport-subscription-notification-r4"

// Notice describes one notification Bundle to build.
type Notice struct {
	// Kind is the notification type.
	Kind Kind
	// Status is the subscription status to report.
	Status Status
	// Count is events-since-subscription-start.
	Count int64
	// Events are the events carried (event-notification, query-event).
	Events []fhirstore.Event
	// Content is the payload level (default: the subscription's).
	Content Content
	// Error, when set with status error, is reported as an error parameter.
	Error string
	// Readers are accesses, beside the subscription's own, that every
	// resource the Bundle carries must be visible to (the caller of
	// $events, the token a websocket was bound with).
	Readers []*smart.Access
}

// Notification builds a history notification Bundle for the subscription
// (the JSON-ready resource): the backport-subscription-status-r4
// Parameters first, then one entry per event as the content level asks:
// none for empty, fullUrl + request + response for id-only, and the
// resource as of the event's version plus the topic's notificationShape
// includes for full-resource.
//
// Every resource carried passes shows for the subscription's access and
// n.Readers: an event whose focus does not is left out entirely, and so is
// an include (neither is reduced to a reference).
func (m *Manager) Notification(ctx context.Context, s *Subscription, n Notice) (*Bundle, error) {
	if n.Content == "" {
		n.Content = s.Content
	}
	viewers := append([]*smart.Access{s.Access}, n.Readers...)
	params := m.statusParameters(s, n)
	entries := make([]BundleEntry, 1, 1+len(n.Events))
	entries[0] = BundleEntry{
		FullURL:  "urn:uuid:" + params.ID,
		Resource: params,
		Request:  &EntryRequest{Method: "GET", URL: m.base + "/Subscription/" + s.ID + "/$status"},
		Response: &EntryResponse{Status: "200"},
	}
	seen := map[string]bool{}
	for _, ev := range n.Events {
		part := make([]Param, 2, 3)
		part[0] = Param{Name: "event-number", ValueString: strconv.FormatInt(ev.Number, 10)}
		part[1] = Param{Name: "timestamp", ValueInstant: fhirstore.FormatInstant(ev.Time)}
		if n.Content != ContentEmpty {
			entry, body, err := m.eventEntry(ctx, ev, n.Content)
			if err != nil {
				return nil, err
			}
			if body != nil && !shows(body, viewers) {
				continue
			}
			part = append(part, Param{Name: "focus", ValueReference: &Reference{Reference: entry.FullURL}})
			entries = append(entries, entry)
			if n.Content == ContentFullResource && body != nil {
				extra, refs, err := m.includes(ctx, s, body, seen, viewers)
				if err != nil {
					return nil, err
				}
				entries = append(entries, extra...)
				for _, r := range refs {
					part = append(part, Param{Name: "additional-context", ValueReference: &Reference{Reference: r}})
				}
			}
		}
		params.Parameter = append(params.Parameter, Param{Name: "notification-event", Part: part})
	}
	return &Bundle{
		ResourceType: "Bundle",
		ID:           m.cfg.NewID(),
		Meta:         Meta{Profile: []string{ProfileNotification}},
		Type:         "history",
		Timestamp:    fhirstore.FormatInstant(m.now()),
		Entry:        entries,
	}, nil
}

// statusParameters builds the status Parameters (without notification
// events).
func (m *Manager) statusParameters(s *Subscription, n Notice) *StatusParameters {
	p := make([]Param, 0, 5+len(n.Events))
	p = append(p, Param{Name: "subscription", ValueReference: &Reference{Reference: m.base + "/Subscription/" + s.ID}})
	if s.Topic != nil && n.Content != ContentEmpty {
		p = append(p, Param{Name: "topic", ValueCanonical: s.TopicURL()})
	}
	p = append(p,
		Param{Name: "status", ValueCode: string(n.Status)},
		Param{Name: "type", ValueCode: string(n.Kind)},
		Param{Name: "events-since-subscription-start", ValueString: strconv.FormatInt(n.Count, 10)},
	)
	if n.Status == StatusError && n.Error != "" && (n.Kind == KindQueryStatus || n.Kind == KindHeartbeat) {
		p = append(p, Param{Name: "error", ValueCodeableConcept: &CodeableConcept{
			Coding: []Coding{{System: "http://terminology.hl7.org/CodeSystem/subscription-error", Code: "no-response"}},
			Text:   n.Error,
		}})
	}
	return &StatusParameters{
		ResourceType: "Parameters",
		ID:           m.cfg.NewID(),
		Meta:         Meta{Profile: []string{ProfileStatus}},
		Parameter:    p,
	}
}

// eventEntry is the Bundle entry of one event's focus, and the focus body
// when the content level carries it.
func (m *Manager) eventEntry(ctx context.Context, ev fhirstore.Event, content Content) (BundleEntry, map[string]any, error) {
	entry := BundleEntry{FullURL: m.base + "/" + ev.Type + "/" + ev.ID}
	switch ev.Interaction {
	case fhirstore.InteractionCreate:
		entry.Request = &EntryRequest{Method: "POST", URL: ev.Type}
		entry.Response = &EntryResponse{Status: "201", Etag: `W/"` + ev.VersionID + `"`}
	case fhirstore.InteractionDelete:
		entry.Request = &EntryRequest{Method: "DELETE", URL: ev.Type + "/" + ev.ID}
		entry.Response = &EntryResponse{Status: "204"}
		return entry, nil, nil
	default:
		entry.Request = &EntryRequest{Method: "PUT", URL: ev.Type + "/" + ev.ID}
		entry.Response = &EntryResponse{Status: "200", Etag: `W/"` + ev.VersionID + `"`}
	}
	if content != ContentFullResource {
		return entry, nil, nil
	}
	res, err := m.store.VRead(ctx, ev.Type, ev.ID, ev.VersionID)
	if err != nil {
		return BundleEntry{}, nil, fmt.Errorf("read %s/%s/_history/%s for event %d: %w", ev.Type, ev.ID, ev.VersionID, ev.Number, err)
	}
	if res.Deleted {
		return entry, nil, nil
	}
	body, err := fhirstore.Decode(res.Body)
	if err != nil {
		return BundleEntry{}, nil, fmt.Errorf("decode %s/%s: %w", ev.Type, ev.ID, err)
	}
	entry.Resource = shownCopy(ev.Type, res.Body, body)
	return entry, body, nil
}

// includes resolves the topic's notificationShape includes of a focus
// ("Encounter:patient", "Encounter:subject:Patient") into entries with the
// current version of each referenced resource that every viewer may see
// (shows), skipping those already in the Bundle. One that a viewer may not
// see is left out, also from the additional-context references.
func (m *Manager) includes(ctx context.Context, s *Subscription, focus map[string]any, seen map[string]bool, viewers []*smart.Access) ([]BundleEntry, []string, error) {
	if s.Topic == nil {
		return nil, nil, nil
	}
	rt, _ := focus["resourceType"].(string)
	id, _ := focus["id"].(string)
	seen[rt+"/"+id] = true
	var wanted []string
	for _, sh := range s.Topic.Shapes {
		if sh.Resource != rt {
			continue
		}
		for _, inc := range sh.Include {
			inc, _, _ = strings.Cut(inc, "&")
			parts := strings.Split(inc, ":")
			if len(parts) < 2 || parts[0] != rt {
				continue
			}
			target := ""
			if len(parts) > 2 {
				target = parts[2]
			}
			keys, err := search.Keys(focus)
			if err != nil {
				return nil, nil, fmt.Errorf("includes of %s/%s: %w", rt, id, err)
			}
			for _, k := range keys {
				typ, rid, ok := strings.Cut(k.Value, "/")
				if k.Param != parts[1] || !ok || !fhirstore.ValidType(typ) || !fhirstore.ValidID(rid) || target != "" && typ != target {
					continue
				}
				if !slices.Contains(wanted, k.Value) {
					wanted = append(wanted, k.Value)
				}
			}
		}
	}
	var entries []BundleEntry
	var refs []string
	for _, w := range wanted {
		typ, rid, _ := strings.Cut(w, "/")
		ref := m.base + "/" + w
		if seen[w] {
			refs = append(refs, ref)
			continue
		}
		res, err := m.store.Read(ctx, typ, rid)
		if err != nil {
			continue // a dangling reference is not an error of the notification
		}
		body, err := fhirstore.Decode(res.Body)
		if err != nil || !shows(body, viewers) {
			continue
		}
		seen[w] = true
		refs = append(refs, ref)
		entries = append(entries, BundleEntry{
			FullURL:  ref,
			Resource: shownCopy(typ, res.Body, body),
			Request:  &EntryRequest{Method: "GET", URL: w},
			Response: &EntryResponse{Status: "200"},
		})
	}
	return entries, refs, nil
}

// EncodeBundle is the one encoding of a notification Bundle, for every
// channel (rest-hook body, websocket frame): compact JSON without a
// trailing newline, with <, > and & left as they are (as the REST API
// writes resources; HTML escaping would change the bytes a receiver
// signs or compares, not their meaning).
func EncodeBundle(bundle any) ([]byte, error) {
	out, err := fhirstore.EncodeJSON(bundle)
	if err != nil {
		return nil, fmt.Errorf("encode notification: %w", err)
	}
	return out, nil
}
