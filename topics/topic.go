package topics

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/fhirsub/fhirsub/conformance/fhirpath"
	"github.com/fhirsub/fhirsub/conformance/search"
)

// Topic is a parsed SubscriptionTopic. It is immutable once returned by
// Parse.
type Topic struct {
	// URL is the canonical URL; Version, Title and Status are the topic's.
	URL, Version, Title, Status string
	// Triggers are the resourceTrigger elements, in document order.
	Triggers []Trigger
	// CanFilterBy lists the filters a subscription may use.
	CanFilterBy []FilterDef
	// Shapes is notificationShape: what to add to a notification.
	Shapes []Shape
	// EventType is the short code of a built-in topic (critical_result,
	// new_order, result_available, order_status_change, task,
	// communication); "" for other topics.
	EventType string
	// Resource is the resource as given to Parse.
	Resource map[string]any
}

// Trigger is one resourceTrigger.
type Trigger struct {
	// Resource is the resource type ("Encounter"); a StructureDefinition
	// URL of a core type is reduced to the type name.
	Resource string
	// Interactions are create, update and/or delete; empty means all three.
	Interactions []string
	// Previous and Current are queryCriteria.previous and .current, parsed
	// against Resource (nil when absent).
	Previous, Current *search.Query
	// ResultForCreate and ResultForDelete are test-passes, test-fails or "".
	ResultForCreate, ResultForDelete string
	// RequireBoth is queryCriteria.requireBoth.
	RequireBoth bool
	// FHIRPath is fhirPathCriteria, nil when absent.
	FHIRPath *fhirpath.Expression
}

// FilterDef is one canFilterBy entry. Comparators and Modifiers are
// normalised: an R4B modifier list, which mixes both, is split.
type FilterDef struct {
	Resource, Param, Definition string
	Comparators, Modifiers      []string
}

// Shape is one notificationShape entry.
type Shape struct {
	Resource            string
	Include, RevInclude []string
}

// Change is one resource change submitted to Topic.Triggered. Previous is
// nil on create; Current is nil on delete. ResourceType may be left empty
// when it can be read from Current or Previous.
type Change struct {
	Interaction, ResourceType string
	Previous, Current         map[string]any
}

// ValidationError reports an invalid or unsupported topic, naming the
// element at fault with a FHIRPath-like path
// ("SubscriptionTopic.resourceTrigger[0].queryCriteria.current"). For a
// Basic-wrapped topic the path is that of the equivalent SubscriptionTopic
// element.
type ValidationError struct {
	Element string
	Message string
	// Err is the underlying parse error, if any.
	Err error
}

// Error implements error.
func (e *ValidationError) Error() string { return e.Element + ": " + e.Message }

// Unwrap returns the underlying error.
func (e *ValidationError) Unwrap() error { return e.Err }

// Interaction codes of supportedInteraction.
const (
	Create = "create"
	Update = "update"
	Delete = "delete"
)

// Result codes of resultForCreate and resultForDelete.
const (
	TestPasses = "test-passes"
	TestFails  = "test-fails"
)

// ResourceTypes returns the resource types the topic's triggers watch,
// sorted and without duplicates.
func (t *Topic) ResourceTypes() []string {
	out := make([]string, 0, len(t.Triggers))
	for _, tr := range t.Triggers {
		out = append(out, tr.Resource)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Canonical returns "url|version", or the URL when the topic has no
// version.
func (t *Topic) Canonical() string {
	if t.Version == "" {
		return t.URL
	}
	return t.URL + "|" + t.Version
}

// Parse parses a SubscriptionTopic (R4B or R5 shape) or an R4 Basic resource
// wrapping one (Backport IG 1.2.0). Anything invalid or unsupported gives a
// *ValidationError naming the element: an unknown resource type, an
// unparseable query or FHIRPath criterion, a topic with event triggers only,
// a canFilterBy parameter that is not a search parameter of its resource.
func Parse(res map[string]any) (*Topic, error) {
	if res == nil {
		return nil, &ValidationError{Element: "SubscriptionTopic", Message: "no resource"}
	}
	rt, _ := res["resourceType"].(string)
	switch rt {
	case "SubscriptionTopic":
		return parseTopic(res, res)
	case "Basic":
		st, err := unwrapBasic(res)
		if err != nil {
			return nil, err
		}
		return parseTopic(st, res)
	case "":
		return nil, &ValidationError{Element: "resourceType", Message: "missing"}
	}
	return nil, &ValidationError{Element: "resourceType",
		Message: fmt.Sprintf("%q is not a SubscriptionTopic or a Basic-wrapped SubscriptionTopic", rt)}
}

// topicStatuses are the PublicationStatus codes.
var topicStatuses = map[string]bool{"draft": true, "active": true, "retired": true, "unknown": true}

func parseTopic(st, original map[string]any) (*Topic, error) {
	p := &reader{}
	t := &Topic{Resource: original}
	t.URL = p.str(st, "url", "SubscriptionTopic.url", true)
	if p.err == nil && !strings.Contains(t.URL, "://") && !strings.HasPrefix(t.URL, "urn:") {
		p.fail("SubscriptionTopic.url", fmt.Sprintf("%q is not an absolute URL", t.URL), nil)
	}
	if p.err == nil && strings.ContainsAny(t.URL, "| \t\n") {
		p.fail("SubscriptionTopic.url", fmt.Sprintf("%q must not contain '|' or spaces", t.URL), nil)
	}
	t.Version = p.str(st, "version", "SubscriptionTopic.version", false)
	t.Title = p.str(st, "title", "SubscriptionTopic.title", false)
	t.Status = p.str(st, "status", "SubscriptionTopic.status", true)
	if p.err == nil && !topicStatuses[t.Status] {
		p.fail("SubscriptionTopic.status", fmt.Sprintf("%q is not draft, active, retired or unknown", t.Status), nil)
	}
	triggers := p.list(st, "resourceTrigger", "SubscriptionTopic.resourceTrigger")
	events := p.list(st, "eventTrigger", "SubscriptionTopic.eventTrigger")
	if p.err == nil && len(triggers) == 0 {
		if len(events) > 0 {
			p.fail("SubscriptionTopic.eventTrigger", "event triggers are not supported; the topic needs at least one resourceTrigger", nil)
		} else {
			p.fail("SubscriptionTopic.resourceTrigger", "at least one resourceTrigger is required", nil)
		}
	}
	for i, raw := range triggers {
		path := fmt.Sprintf("SubscriptionTopic.resourceTrigger[%d]", i)
		if tr, ok := p.trigger(raw, path); ok {
			t.Triggers = append(t.Triggers, tr)
		}
	}
	types := t.ResourceTypes()
	for i, raw := range p.list(st, "canFilterBy", "SubscriptionTopic.canFilterBy") {
		path := fmt.Sprintf("SubscriptionTopic.canFilterBy[%d]", i)
		if fd, ok := p.filterDef(raw, path, types); ok {
			t.CanFilterBy = append(t.CanFilterBy, fd)
		}
	}
	for i, raw := range p.list(st, "notificationShape", "SubscriptionTopic.notificationShape") {
		path := fmt.Sprintf("SubscriptionTopic.notificationShape[%d]", i)
		if sh, ok := p.shape(raw, path); ok {
			t.Shapes = append(t.Shapes, sh)
		}
	}
	if p.err != nil {
		return nil, p.err
	}
	root, _ := original["resourceType"].(string)
	et, err := eventType(original, root)
	if err != nil {
		return nil, err
	}
	t.EventType = et
	return t, nil
}

// reader walks decoded JSON and keeps the first error.
type reader struct{ err error }

func (p *reader) fail(element, msg string, err error) {
	if p.err == nil {
		p.err = &ValidationError{Element: element, Message: msg, Err: err}
	}
}

// str reads a string element.
func (p *reader) str(m map[string]any, key, path string, required bool) string {
	if p.err != nil {
		return ""
	}
	v, ok := m[key]
	if !ok || v == nil {
		if required {
			p.fail(path, "missing", nil)
		}
		return ""
	}
	s, ok := v.(string)
	if !ok {
		p.fail(path, fmt.Sprintf("must be a string, not %s", jsonKind(v)), nil)
		return ""
	}
	s = strings.TrimSpace(s)
	if s == "" && required {
		p.fail(path, "empty", nil)
	}
	return s
}

// strs reads an array of strings.
func (p *reader) strs(m map[string]any, key, path string) []string {
	if p.err != nil {
		return nil
	}
	v, ok := m[key]
	if !ok || v == nil {
		return nil
	}
	arr, ok := v.([]any)
	if !ok {
		p.fail(path, fmt.Sprintf("must be an array, not %s", jsonKind(v)), nil)
		return nil
	}
	out := make([]string, 0, len(arr))
	for i, it := range arr {
		s, ok := it.(string)
		if !ok {
			p.fail(fmt.Sprintf("%s[%d]", path, i), fmt.Sprintf("must be a string, not %s", jsonKind(it)), nil)
			return nil
		}
		out = append(out, strings.TrimSpace(s))
	}
	return out
}

// list reads an array of objects.
func (p *reader) list(m map[string]any, key, path string) []map[string]any {
	if p.err != nil {
		return nil
	}
	v, ok := m[key]
	if !ok || v == nil {
		return nil
	}
	arr, ok := v.([]any)
	if !ok {
		p.fail(path, fmt.Sprintf("must be an array, not %s", jsonKind(v)), nil)
		return nil
	}
	out := make([]map[string]any, 0, len(arr))
	for i, it := range arr {
		obj, ok := it.(map[string]any)
		if !ok {
			p.fail(fmt.Sprintf("%s[%d]", path, i), fmt.Sprintf("must be an object, not %s", jsonKind(it)), nil)
			return nil
		}
		out = append(out, obj)
	}
	return out
}

// object reads an optional object element.
func (p *reader) object(m map[string]any, key, path string) map[string]any {
	if p.err != nil {
		return nil
	}
	v, ok := m[key]
	if !ok || v == nil {
		return nil
	}
	obj, ok := v.(map[string]any)
	if !ok {
		p.fail(path, fmt.Sprintf("must be an object, not %s", jsonKind(v)), nil)
	}
	return obj
}

func jsonKind(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	case nil:
		return "null"
	}
	return "a number"
}

// errorText gives the message of a parse error without a redundant
// package prefix.
func errorText(err error) string {
	var se *search.Error
	if errors.As(err, &se) {
		return fmt.Sprintf("search parameter %q: %s", se.Param, se.Message)
	}
	return err.Error()
}
