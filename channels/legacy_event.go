package channels

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"sync/atomic"
	"time"
)

// Actions of a legacy update message.
const (
	ActionCreated = "created"
	ActionUpdated = "updated"
	ActionDeleted = "deleted"
)

// LegacyUpdate describes one committed change as the legacy protocol's
// "update" message.
type LegacyUpdate struct {
	// Seq is the change feed sequence number.
	Seq int64
	// Time is the commit time; it becomes the message's timestamp.
	Time time.Time
	// Action is ActionCreated, ActionUpdated or ActionDeleted.
	Action string
	// ResourceType and ResourceID name the resource.
	ResourceType, ResourceID string
	// PatientIDs are the ids of the Patient compartments the resource is
	// in (for a deletion: those of the last live version), in order; empty
	// when it is in none.
	PatientIDs []string
	// Resource is the resource JSON; nil for a deletion.
	Resource json.RawMessage
	// Focus is the resource decoded (for a deletion: its last live
	// version), read-only once given. Connections with a restricted token
	// use it to decide whether they may see the change; when nil, Resource
	// is decoded on demand, and a deletion is judged by PatientIDs alone
	// (granular scopes then refuse it).
	Focus map[string]any
}

// LegacyClinicalEvent describes one built-in topic firing as the legacy
// protocol's clinical event message.
type LegacyClinicalEvent struct {
	// Seq is the sequence number of the change that fired the topic.
	Seq int64
	// Time is the commit time of that change.
	Time time.Time
	// EventType is the topic's short code (critical_result, new_order…).
	EventType string
	// ResourceID is the id of the resource that fired the topic (the
	// original dialect's resource_id).
	ResourceID string
	// ResourceType is the type of the resource that fired the topic: the
	// subscription filter on resource types applies to it.
	ResourceType string
	// PatientIDs are as in LegacyUpdate.
	PatientIDs []string
	// Details is the "details" object. The hub sets details.patient_id to
	// the patient the receiving subscription matched (or the first, or
	// null), so it need not be set.
	Details map[string]any
	// Focus is the resource that fired the topic, decoded (as in
	// LegacyUpdate); when nil the event is judged by PatientIDs alone.
	Focus map[string]any
}

// LegacyEvent is one server message of the legacy protocol (an update or a
// clinical event), encoded once and shared by every connection it goes to.
// Because "patient_id" names the patient a subscription matched, a resource
// in several patients' compartments has one frame per patient, each encoded
// on first use. Safe for concurrent use.
type LegacyEvent struct {
	// Seq is the change's sequence number.
	Seq int64
	// ResourceType is the type subscriptions filter on.
	ResourceType string
	// PatientIDs are the patients the event concerns.
	PatientIDs []string

	frames [len(dialects)][]atomic.Pointer[[]byte] // per dialect, one per patient (one when there is none)
	encode func(d LegacyDialect, patientID any) ([]byte, error)

	focus map[string]any // the decoded focus, when the producer gave it
	lazy  focusState     // else the update's resource, decoded on demand
}

// focusMap returns the event's resource for access decisions, or nil.
func (ev *LegacyEvent) focusMap() map[string]any {
	if ev.focus != nil {
		return ev.focus
	}
	return ev.lazy.get()
}

// NewLegacyUpdate encodes an update message. It fails on an unknown action,
// a missing type or id, or a resource that is not a JSON object.
func NewLegacyUpdate(u LegacyUpdate) (*LegacyEvent, error) {
	switch u.Action {
	case ActionCreated, ActionUpdated, ActionDeleted:
	default:
		return nil, fmt.Errorf("legacy update: unknown action %q", u.Action)
	}
	if u.ResourceType == "" || u.ResourceID == "" {
		return nil, errors.New("legacy update: resource type and id are required")
	}
	resource := []byte("null")
	if u.Action != ActionDeleted {
		if len(u.Resource) == 0 || u.Resource[0] != '{' || !json.Valid(u.Resource) {
			return nil, fmt.Errorf("legacy update %s/%s: resource is not a JSON object", u.ResourceType, u.ResourceID)
		}
		resource = u.Resource
	}
	ts := timestamp(u.Time)
	// The extended dialect tags the message with its seq; the original
	// one has no seq, says "message_id":null, and names no patient on a
	// deletion (its hooks read the resource of any message with one).
	encode := func(d LegacyDialect, patientID any) ([]byte, error) {
		p := "null"
		if s, ok := patientID.(string); ok && (d == DialectExtended || u.Action != ActionDeleted) {
			p = quote(s)
		}
		b := make([]byte, 0, 160+len(p)+len(resource))
		b = append(b, `{"type":"update",`...)
		if d == DialectExtended {
			b = append(b, `"seq":`...)
			b = strconv.AppendInt(b, u.Seq, 10)
			b = append(b, ',')
		}
		b = append(b, `"data":{"action":"`...)
		b = append(b, u.Action...)
		b = append(b, `","resource_type":`...)
		b = append(b, quote(u.ResourceType)...)
		b = append(b, `,"resource_id":`...)
		b = append(b, quote(u.ResourceID)...)
		b = append(b, `,"patient_id":`...)
		b = append(b, p...)
		b = append(b, `,"resource":`...)
		b = append(b, resource...)
		b = append(b, `},"timestamp":"`...)
		b = append(b, ts...)
		b = append(b, '"')
		if d == DialectOriginal {
			b = append(b, `,"message_id":null`...)
		}
		b = append(b, '}')
		return b, nil
	}
	ev, err := newLegacyEvent(u.Seq, u.ResourceType, u.PatientIDs, encode)
	if err != nil {
		return nil, err
	}
	ev.focus = u.Focus
	if u.Action != ActionDeleted {
		ev.lazy.raw = u.Resource
	}
	return ev, nil
}

// NewLegacyClinicalEvent encodes a clinical event: a "clinical_event"
// message in the extended dialect, an "update" message with the action
// "clinical_event" in the original one. It fails when the details cannot
// be encoded as JSON.
func NewLegacyClinicalEvent(e LegacyClinicalEvent) (*LegacyEvent, error) {
	if e.EventType == "" {
		return nil, errors.New("legacy clinical event: event type is required")
	}
	type data struct {
		EventType string         `json:"event_type"`
		Details   map[string]any `json:"details"`
	}
	type extended struct {
		Type      string `json:"type"`
		Seq       int64  `json:"seq"`
		Data      data   `json:"data"`
		Timestamp string `json:"timestamp"`
	}
	type update struct {
		Action       string `json:"action"`
		ResourceType string `json:"resource_type"`
		ResourceID   string `json:"resource_id"`
		PatientID    any    `json:"patient_id"`
		Resource     data   `json:"resource"`
	}
	type original struct {
		Type      string `json:"type"`
		Data      update `json:"data"`
		Timestamp string `json:"timestamp"`
		MessageID *int   `json:"message_id"`
	}
	ts := timestamp(e.Time)
	encode := func(d LegacyDialect, patientID any) ([]byte, error) {
		details := maps.Clone(e.Details)
		if details == nil {
			details = map[string]any{}
		}
		details["patient_id"] = patientID
		var msg any = extended{Type: "clinical_event", Seq: e.Seq,
			Data: data{EventType: e.EventType, Details: details}, Timestamp: ts}
		if d == DialectOriginal {
			msg = original{Type: "update", Timestamp: ts, Data: update{Action: "clinical_event",
				ResourceType: e.ResourceType, ResourceID: e.ResourceID, PatientID: patientID,
				Resource: data{EventType: e.EventType, Details: details}}}
		}
		b, err := json.Marshal(msg)
		if err != nil {
			return nil, fmt.Errorf("legacy clinical event %s: %w", e.EventType, err)
		}
		return b, nil
	}
	ev, err := newLegacyEvent(e.Seq, e.ResourceType, e.PatientIDs, encode)
	if err != nil {
		return nil, err
	}
	ev.focus = e.Focus
	return ev, nil
}

func newLegacyEvent(seq int64, rt string, patients []string, encode func(LegacyDialect, any) ([]byte, error)) (*LegacyEvent, error) {
	ev := &LegacyEvent{Seq: seq, ResourceType: rt, PatientIDs: patients, encode: encode}
	n := max(1, len(patients))
	all := make([]atomic.Pointer[[]byte], n*len(dialects))
	for d := range ev.frames {
		ev.frames[d] = all[d*n : (d+1)*n]
	}
	// The first frame is encoded now, so that an encoding error surfaces
	// here; the others can only differ by the patient id and the envelope.
	if _, err := ev.frame(DialectExtended, 0); err != nil {
		return nil, err
	}
	return ev, nil
}

// Frame returns the encoded extended-dialect message whose patient_id is
// PatientIDs[i] (null when there are none).
func (ev *LegacyEvent) Frame(i int) []byte { return ev.DialectFrame(DialectExtended, i) }

// DialectFrame returns the encoded message of dialect d whose patient_id
// is PatientIDs[i] (null when there are none).
func (ev *LegacyEvent) DialectFrame(d LegacyDialect, i int) []byte {
	b, _ := ev.frame(d, i) // only the first encoding can fail, and it was checked
	return b
}

func (ev *LegacyEvent) frame(d LegacyDialect, i int) ([]byte, error) {
	if p := ev.frames[d][i].Load(); p != nil {
		return *p, nil
	}
	var patient any
	if i < len(ev.PatientIDs) {
		patient = ev.PatientIDs[i]
	}
	b, err := ev.encode(d, patient)
	if err != nil {
		return nil, err
	}
	// Two goroutines may encode the same frame; both results are equal.
	ev.frames[d][i].Store(&b)
	return b, nil
}

func quote(s string) string {
	b, _ := json.Marshal(s) // a string always encodes
	return string(b)
}

func timestamp(t time.Time) string {
	if t.IsZero() {
		t = time.Now()
	}
	return t.UTC().Format(time.RFC3339Nano)
}
