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
// protocol's "clinical_event" message.
type LegacyClinicalEvent struct {
	// Seq is the sequence number of the change that fired the topic.
	Seq int64
	// Time is the commit time of that change.
	Time time.Time
	// EventType is the topic's short code (critical_result, new_order…).
	EventType string
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

	frames []atomic.Pointer[[]byte] // one per patient (one when there is none)
	encode func(patientID any) ([]byte, error)

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
	head := `{"type":"update","seq":` + strconv.FormatInt(u.Seq, 10) +
		`,"data":{"action":"` + u.Action + `","resource_type":` + quote(u.ResourceType) +
		`,"resource_id":` + quote(u.ResourceID) + `,"patient_id":`
	tail := `},"timestamp":"` + timestamp(u.Time) + `"}`
	encode := func(patientID any) ([]byte, error) {
		p := "null"
		if s, ok := patientID.(string); ok {
			p = quote(s)
		}
		b := make([]byte, 0, len(head)+len(p)+len(`,"resource":`)+len(resource)+len(tail))
		b = append(b, head...)
		b = append(b, p...)
		b = append(b, `,"resource":`...)
		b = append(b, resource...)
		b = append(b, tail...)
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

// NewLegacyClinicalEvent encodes a clinical_event message. It fails when
// the details cannot be encoded as JSON.
func NewLegacyClinicalEvent(e LegacyClinicalEvent) (*LegacyEvent, error) {
	if e.EventType == "" {
		return nil, errors.New("legacy clinical event: event type is required")
	}
	type data struct {
		EventType string         `json:"event_type"`
		Details   map[string]any `json:"details"`
	}
	type message struct {
		Type      string `json:"type"`
		Seq       int64  `json:"seq"`
		Data      data   `json:"data"`
		Timestamp string `json:"timestamp"`
	}
	ts := timestamp(e.Time)
	encode := func(patientID any) ([]byte, error) {
		details := maps.Clone(e.Details)
		if details == nil {
			details = map[string]any{}
		}
		details["patient_id"] = patientID
		b, err := json.Marshal(message{Type: "clinical_event", Seq: e.Seq,
			Data: data{EventType: e.EventType, Details: details}, Timestamp: ts})
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

func newLegacyEvent(seq int64, rt string, patients []string, encode func(any) ([]byte, error)) (*LegacyEvent, error) {
	ev := &LegacyEvent{Seq: seq, ResourceType: rt, PatientIDs: patients, encode: encode}
	ev.frames = make([]atomic.Pointer[[]byte], max(1, len(patients)))
	// The first frame is encoded now, so that an encoding error surfaces
	// here; the others can only differ by the patient id.
	if _, err := ev.frame(0); err != nil {
		return nil, err
	}
	return ev, nil
}

// Frame returns the encoded message whose patient_id is PatientIDs[i]
// (null when there are none).
func (ev *LegacyEvent) Frame(i int) []byte {
	b, _ := ev.frame(i) // only the first encoding can fail, and it was checked
	return b
}

func (ev *LegacyEvent) frame(i int) ([]byte, error) {
	if p := ev.frames[i].Load(); p != nil {
		return *p, nil
	}
	var patient any
	if i < len(ev.PatientIDs) {
		patient = ev.PatientIDs[i]
	}
	b, err := ev.encode(patient)
	if err != nil {
		return nil, err
	}
	// Two goroutines may encode the same frame; both results are equal.
	ev.frames[i].Store(&b)
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
