package main

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// The checks of Inferno's subscriptions test kit on a notification Bundle
// (its notification conformance verification), plus the status
// Parameters profile (backport-subscription-status-r4) checked
// structurally where Inferno runs the HL7 validator.

const (
	statusProfile  = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-subscription-status-r4"
	backportSubURL = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-subscription"
	topicCanonExt  = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/capabilitystatement-subscriptiontopic-canonical"
	backportOpBase = "http://hl7.org/fhir/uv/subscriptions-backport/OperationDefinition/"
)

// findings collects the error and warning messages of one Inferno test.
type findings struct {
	errors, warnings []string
}

func (f *findings) errorf(format string, a ...any) {
	f.errors = append(f.errors, fmt.Sprintf(format, a...))
}
func (f *findings) warnf(format string, a ...any) {
	f.warnings = append(f.warnings, fmt.Sprintf(format, a...))
}

var (
	instantRE = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$`)
	digitsRE  = regexp.MustCompile(`^\d+$`)
)

// jmap and jlist read decoded JSON without panicking on a wrong shape.
func jmap(v any) map[string]any { m, _ := v.(map[string]any); return m }
func jlist(v any) []any         { return asSlice(v) }
func jstr(v any) string         { s, _ := v.(string); return s }

// params returns the parameters (or parts) called name.
func params(list []any, name string) []map[string]any {
	var out []map[string]any
	for _, p := range list {
		if pm := jmap(p); pm["name"] == name {
			out = append(out, pm)
		}
	}
	return out
}

// checkStatusParameters validates a status Parameters against the
// backport-subscription-status-r4 profile's slices.
func checkStatusParameters(f *findings, p map[string]any) {
	if p["resourceType"] != "Parameters" {
		f.errorf("Unexpected resource type: Expected `Parameters`. Got `%v`", p["resourceType"])
		return
	}
	if !slices.Contains(jlist(jmap(p["meta"])["profile"]), any(statusProfile)) {
		f.errorf("status Parameters does not claim the profile %s", statusProfile)
	}
	ps := jlist(p["parameter"])
	one := func(name, value string, required bool) (string, bool) {
		got := params(ps, name)
		if len(got) > 1 || (required && len(got) == 0) {
			f.errorf("parameter %s: %d occurrences", name, len(got))
			return "", false
		}
		if len(got) == 0 {
			return "", false
		}
		v, ok := got[0][value]
		if !ok {
			f.errorf("parameter %s has no %s", name, value)
		}
		if value == "valueReference" {
			return jstr(jmap(v)["reference"]), ok
		}
		return jstr(v), ok
	}
	if ref, ok := one("subscription", "valueReference", true); ok && ref == "" {
		f.errorf("parameter subscription has an empty reference")
	}
	one("topic", "valueCanonical", false)
	if st, ok := one("status", "valueCode", true); ok && !slices.Contains([]string{"requested", "active", "error", "off"}, st) {
		f.errorf("status %q is not a subscription-status code", st)
	}
	if ty, ok := one("type", "valueCode", true); ok && !slices.Contains(
		[]string{"handshake", "heartbeat", "event-notification", "query-status", "query-event"}, ty) {
		f.errorf("type %q is not a notification type", ty)
	}
	if n, ok := one("events-since-subscription-start", "valueString", false); ok && !digitsRE.MatchString(n) {
		f.errorf("events-since-subscription-start %q is not a count as a string", n)
	}
	for _, ev := range params(ps, "notification-event") {
		parts := jlist(ev["part"])
		nums := params(parts, "event-number")
		if len(nums) != 1 || !digitsRE.MatchString(jstr(nums[0]["valueString"])) {
			f.errorf("notification-event needs exactly one event-number valueString, got %v", nums)
		}
		for _, ts := range params(parts, "timestamp") {
			if !instantRE.MatchString(jstr(ts["valueInstant"])) {
				f.errorf("notification-event timestamp %v is not a valueInstant", ts)
			}
		}
		for _, name := range []string{"focus", "additional-context"} {
			for _, r := range params(parts, name) {
				if jstr(jmap(r["valueReference"])["reference"]) == "" {
					f.errorf("notification-event %s without a valueReference.reference", name)
				}
			}
		}
	}
}

// checkEntryRequestResponse is Inferno's check that a history entry has
// both request and response.
func checkEntryRequestResponse(f *findings, e map[string]any, n int) {
	if len(jmap(e["request"])) == 0 {
		f.errorf("The `entry.request` field is mandatory for history Bundles, but was not included in entry %d", n)
	}
	if len(jmap(e["response"])) == 0 {
		f.errorf("The `entry.response` field is mandatory for history Bundles, but was not included in entry %d", n)
	}
}

// checkNotification is Inferno's notification_verification: body must be
// a history Bundle whose first entry is the status Parameters of sub, of
// type typ and (when status is not "") that status. It returns the
// decoded Bundle (nil when it is not one).
func checkNotification(f *findings, body []byte, typ, sub, status string) map[string]any {
	var b map[string]any
	if err := json.Unmarshal(body, &b); err != nil {
		f.errorf("notification is not valid JSON: %v", err)
		return nil
	}
	if b["resourceType"] != "Bundle" {
		f.errorf("notification is a %v, not a Bundle", b["resourceType"])
		return nil
	}
	if b["type"] != "history" {
		f.errorf("Notification should be a history Bundle, instead was %v", b["type"])
	}
	checkBundleBase(f, b)
	entries := jlist(b["entry"])
	if len(entries) == 0 {
		f.errorf("Notification Bundle is empty.")
		return nil
	}
	first := jmap(entries[0])
	checkEntryRequestResponse(f, first, 1)
	if u := jstr(jmap(first["request"])["url"]); !strings.HasSuffix(u, "Subscription/"+sub+"/$status") {
		f.errorf("The SubscriptionStatus `request` SHALL be filled out to match a request to the $status operation (got %q)", u)
	}
	for i, e := range entries[1:] {
		checkEntryRequestResponse(f, jmap(e), i+2)
	}
	p := jmap(first["resource"])
	checkStatusParameters(f, p)
	ps := jlist(p["parameter"])
	if got := firstValue(ps, "type", "valueCode"); got != typ {
		f.errorf("The status Parameters should have its `type` set to %q, was %q", typ, got)
	}
	if got := firstValue(ps, "status", "valueCode"); status != "" && got != status {
		f.errorf("The status Parameters of a %s should have its `status` set to %q, was %q", typ, status, got)
	}
	return b
}

func firstValue(ps []any, name, value string) string {
	if got := params(ps, name); len(got) > 0 {
		return jstr(got[0][value])
	}
	return ""
}

// statusParts returns the status Parameters' parameter list and the
// entries after it.
func statusParts(b map[string]any) (ps []any, rest []map[string]any) {
	entries := jlist(b["entry"])
	ps = jlist(jmap(jmap(entries[0])["resource"])["parameter"])
	for _, e := range entries[1:] {
		rest = append(rest, jmap(e))
	}
	return ps, rest
}

// checkEventCommon are the brief's checks on every event notification
// beyond Inferno's: a count, event numbers, instants, absolute foci.
func checkEventCommon(f *findings, b map[string]any, content string) {
	ps, _ := statusParts(b)
	if firstValue(ps, "events-since-subscription-start", "valueString") == "" {
		f.errorf("event notification without events-since-subscription-start as a string")
	}
	for _, ev := range params(ps, "notification-event") {
		parts := jlist(ev["part"])
		if len(params(parts, "timestamp")) == 0 {
			f.errorf("notification-event without a timestamp")
		}
		for _, fo := range params(parts, "focus") {
			if r := jstr(jmap(fo["valueReference"])["reference"]); content != "empty" && !strings.HasPrefix(r, "http") {
				f.errorf("focus %q is not an absolute URL", r)
			}
		}
	}
}

// checkEmpty is Inferno's empty_event_notification_verification.
func checkEmpty(f *findings, b map[string]any) {
	ps, rest := statusParts(b)
	if len(params(ps, "topic")) > 0 {
		f.warnf("Parameters.parameter:topic.value[x]: This value SHOULD NOT be present when using empty payloads")
	}
	if len(rest) > 0 {
		f.errorf("When the content type is empty, notification bundles SHALL not contain Bundle.entry elements other than the SubscriptionStatus")
	}
	events := params(ps, "notification-event")
	if len(events) == 0 {
		f.errorf("Events are required for empty notifications, but the SubscriptionStatus does not contain event-notifications")
	}
	for _, ev := range events {
		if len(params(jlist(ev["part"]), "focus"))+len(params(jlist(ev["part"]), "additional-context")) > 0 {
			f.errorf("a notification with an empty payload SHALL NOT include references to resources")
		}
	}
}

// checkIDOnly is Inferno's id_only_event_notification_verification.
func checkIDOnly(f *findings, b map[string]any, resourceType string) {
	ps, rest := statusParts(b)
	events := params(ps, "notification-event")
	if len(events) == 0 {
		f.errorf("The notification event parameter must be present in `id-only` notification bundles.")
	}
	for _, ev := range events {
		focus := params(jlist(ev["part"]), "focus")
		if len(focus) == 0 {
			f.errorf("id-only notification bundles SHALL include references to the focus resources")
			break
		}
		if r := jstr(jmap(focus[0]["valueReference"])["reference"]); !strings.Contains(r, resourceType) {
			f.errorf("focus %q should reference a %s", r, resourceType)
			break
		}
	}
	for _, e := range rest {
		if e["resource"] != nil {
			f.errorf("Each Bundle.entry for id-only notification SHALL not contain the `resource` field")
		}
		if jstr(e["fullUrl"]) == "" {
			f.errorf("Each Bundle.entry for id-only notification SHALL contain a relevant resource URL in the fullUrl")
		}
	}
}

// checkFullResource is Inferno's full_resource_event_notification_verification.
func checkFullResource(f *findings, b map[string]any, resourceType string) {
	ps, rest := statusParts(b)
	if len(params(ps, "topic")) == 0 {
		f.warnf("Parameters.parameter:topic.value[x]: This value SHOULD be present when using full-resource payloads")
	}
	relevant := false
	for _, e := range rest {
		r := jmap(e["resource"])
		relevant = relevant || r["resourceType"] == resourceType || strings.Contains(jstr(jmap(e["request"])["url"]), resourceType)
		if r != nil && (jstr(r["resourceType"]) == "" || jstr(r["id"]) == "") {
			f.errorf("entry resource %v lacks resourceType or id", e["fullUrl"])
		}
	}
	if !relevant {
		f.errorf("The notification bundle of type `full-resource` must include at least one %s resource", resourceType)
	}
	resolves := func(ref string) bool {
		for _, e := range rest {
			r := jmap(e["resource"])
			if strings.HasPrefix(ref, "urn:") && ref == jstr(e["fullUrl"]) ||
				!strings.HasPrefix(ref, "urn:") && r != nil && strings.Contains(ref, jstr(r["resourceType"])+"/"+jstr(r["id"])) {
				return true
			}
		}
		return false
	}
	events := params(ps, "notification-event")
	if len(events) == 0 {
		f.errorf("The notification event parameter must be present in `full-resource` notification bundles.")
	}
	for _, ev := range events {
		parts := jlist(ev["part"])
		focus := params(parts, "focus")
		if len(focus) == 0 {
			f.errorf("full-resource notification bundles SHALL include references to the focus resources")
		} else if r := jstr(jmap(focus[0]["valueReference"])["reference"]); !resolves(r) {
			f.errorf("The Notification Bundle does not include a resource entry for the focus %s", r)
		}
		for _, ac := range params(parts, "additional-context") {
			if r := jstr(jmap(ac["valueReference"])["reference"]); !resolves(r) {
				f.errorf("The Notification Bundle does not include a resource entry for the additional-context %s", r)
			}
		}
	}
}
