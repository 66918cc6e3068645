package subscriptions_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fhirsub/fhirsub/subscriptions"
)

// waitStatus polls the Subscription resource until it has the status.
func (e *env) waitStatus(id, status string) map[string]any {
	e.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		r := e.mustDo(200, "GET", "/Subscription/"+id, nil)
		if r["status"] == status {
			return r
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("Subscription/%s: status %v, want %s (error %v)", id, r["status"], status, r["error"])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestTopicWorkflow(t *testing.T) {
	rcv := newReceiver(t)
	e := newEnv(t)
	e.mustDo(201, "PUT", "/SubscriptionTopic/encounter-start", encounterTopic())
	e.mustDo(201, "PUT", "/Patient/p1", map[string]any{"resourceType": "Patient", "id": "p1", "active": true})

	ids := map[string]string{}
	for _, content := range []string{"empty", "id-only", "full-resource"} {
		sub := topicSub(rcv.srv.URL+"/hook/"+content, encTopic, content, "Encounter?patient=Patient/p1")
		if content == "id-only" {
			channelExt(sub, subscriptions.ExtHeartbeatPeriod, "valueUnsignedInt", 1)
		}
		got := e.mustDo(201, "POST", "/Subscription", sub)
		if got["status"] != "requested" {
			t.Fatalf("created %s subscription has status %v, want requested", content, got["status"])
		}
		ids[content] = got["id"].(string)
	}

	for content, id := range ids {
		hs := rcv.waitFor("handshake "+content, forSub(t, id, "handshake"))
		if st := param(t, hs.JSON, "status"); st != "requested" {
			t.Errorf("%s handshake status %v, want requested", content, st)
		}
		if n := param(t, hs.JSON, "events-since-subscription-start"); n != "0" {
			t.Errorf("%s handshake events-since-subscription-start %v, want \"0\"", content, n)
		}
		if got := hs.Header.Get("Authorization"); got != "Bearer SECRET-TOKEN" {
			t.Errorf("Authorization header %q, want the channel.header value", got)
		}
		if got := hs.Header.Get("X-Extra"); got != "one, two" {
			t.Errorf("X-Extra header %q", got)
		}
		if ct := hs.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/fhir+json") {
			t.Errorf("Content-Type %q", ct)
		}
		checkHistoryBundle(t, hs.JSON, id)
		e.waitStatus(id, "active")
	}

	// an event for p2 does not pass the filter; one for p1 does
	e.mustDo(201, "POST", "/Encounter", encounter("p2"))
	enc := e.mustDo(201, "POST", "/Encounter", encounter("p1"))
	encID := enc["id"].(string)

	for content, id := range ids {
		n := rcv.waitFor(content+" event", forSub(t, id, "event-notification"))
		checkHistoryBundle(t, n.JSON, id)
		if st := param(t, n.JSON, "status"); st != "active" {
			t.Errorf("%s: status %v, want active", content, st)
		}
		if got := eventNumbers(t, n.JSON); !slices.Equal(got, []string{"1"}) {
			t.Errorf("%s: event numbers %v, want [1]", content, got)
		}
		if c := param(t, n.JSON, "events-since-subscription-start"); c != "1" {
			t.Errorf("%s: events-since-subscription-start %v, want \"1\"", content, c)
		}
		entries := n.JSON["entry"].([]any)
		focus := focusRef(t, n.JSON)
		switch content {
		case "empty":
			if len(entries) != 1 || focus != "" || param(t, n.JSON, "topic") != nil {
				t.Errorf("empty: %d entries, focus %q, topic %v; want status only", len(entries), focus, param(t, n.JSON, "topic"))
			}
		case "id-only":
			if focus != e.url+"/Encounter/"+encID || len(entries) != 2 {
				t.Fatalf("id-only: focus %q, %d entries", focus, len(entries))
			}
			en := entries[1].(map[string]any)
			if en["resource"] != nil || en["fullUrl"] != focus {
				t.Errorf("id-only entry %v: want fullUrl %s and no resource", en, focus)
			}
		case "full-resource":
			if focus != e.url+"/Encounter/"+encID || param(t, n.JSON, "topic") != encTopic {
				t.Fatalf("full-resource: focus %q topic %v", focus, param(t, n.JSON, "topic"))
			}
			var types []string
			for _, raw := range entries[1:] {
				en := raw.(map[string]any)
				res := en["resource"].(map[string]any)
				types = append(types, res["resourceType"].(string)+"/"+res["id"].(string))
			}
			if !slices.Equal(types, []string{"Encounter/" + encID, "Patient/p1"}) {
				t.Errorf("full-resource entries %v, want the encounter and its patient", types)
			}
			if ctx := additionalContext(t, n.JSON); !slices.Equal(ctx, []string{e.url + "/Patient/p1"}) {
				t.Errorf("additional-context %v", ctx)
			}
			req := entries[1].(map[string]any)["request"].(map[string]any)
			if req["method"] != "POST" || req["url"] != "Encounter" {
				t.Errorf("create entry request %v", req)
			}
		}
	}

	// heartbeats: only for the subscription with a heartbeat period
	rcv.waitFor("heartbeat", forSub(t, ids["id-only"], "heartbeat"))
	for _, content := range []string{"empty", "full-resource"} {
		if hb := rcv.matching(forSub(t, ids[content], "heartbeat")); len(hb) > 0 {
			t.Errorf("%s subscription without heartbeat period got %d heartbeats", content, len(hb))
		}
	}

	// $status, instance and type level
	st := e.mustDo(200, "GET", "/Subscription/"+ids["id-only"]+"/$status", nil)
	if st["type"] != "searchset" || fmt.Sprint(st["total"]) != "1" {
		t.Fatalf("$status: type %v total %v", st["type"], st["total"])
	}
	entry := st["entry"].([]any)[0].(map[string]any)
	if entry["search"].(map[string]any)["mode"] != "match" {
		t.Errorf("$status entry search %v", entry["search"])
	}
	if param(t, st, "type") != "query-status" || param(t, st, "events-since-subscription-start") != "1" {
		t.Errorf("$status parameters %v", params(t, st))
	}
	if ref := param(t, st, "subscription").(map[string]any)["reference"].(string); !strings.HasSuffix(ref, "/"+ids["id-only"]) {
		t.Errorf("$status subscription %s", ref)
	}
	all := e.mustDo(200, "GET", "/Subscription/$status?status=active", nil)
	if fmt.Sprint(all["total"]) != "3" {
		t.Errorf("type-level $status total %v, want 3", all["total"])
	}
	e.mustDo(404, "GET", "/Subscription/nope/$status", nil)

	// $events returns the missed events, the content hint lowers the level
	ev := e.mustDo(200, "GET", "/Subscription/"+ids["full-resource"]+"/$events?eventsSinceNumber=1&content=id-only", nil)
	if ev["type"] != "history" || param(t, ev, "type") != "query-event" || !slices.Equal(eventNumbers(t, ev), []string{"1"}) {
		t.Fatalf("$events: %v", ev)
	}
	for _, raw := range ev["entry"].([]any)[1:] {
		if raw.(map[string]any)["resource"] != nil {
			t.Errorf("$events content=id-only returned a resource")
		}
	}
	post := e.mustDo(200, "POST", "/Subscription/"+ids["empty"]+"/$events", map[string]any{
		"resourceType": "Parameters", "parameter": []any{map[string]any{"name": "eventsSinceNumber", "valueString": "2"}}})
	if got := eventNumbers(t, post); len(got) != 0 {
		t.Errorf("$events since 2: %v, want none", got)
	}

	// the CapabilityStatement lists every topic and the profile
	cs := e.mustDo(200, "GET", "/metadata", nil)
	subRes := capabilityResource(t, cs, "Subscription")
	var canon []string
	for _, x := range subRes["extension"].([]any) {
		canon = append(canon, x.(map[string]any)["valueCanonical"].(string))
	}
	if !slices.Contains(canon, encTopic) || !slices.Contains(canon, resultTopic) {
		t.Errorf("topic canonicals %v", canon)
	}
	if fmt.Sprint(subRes["supportedProfile"]) != "["+subscriptions.ProfileSubscription+"]" {
		t.Errorf("supportedProfile %v", subRes["supportedProfile"])
	}

	// a topic in use cannot be deleted
	e.mustDo(409, "DELETE", "/SubscriptionTopic/encounter-start", nil)
}

func encounter(patient string) map[string]any {
	return map[string]any{"resourceType": "Encounter", "status": "in-progress",
		"class":   map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
		"subject": map[string]any{"reference": "Patient/" + patient}}
}

// checkHistoryBundle checks the rules every notification Bundle obeys.
func checkHistoryBundle(t *testing.T, b map[string]any, id string) {
	t.Helper()
	if b["resourceType"] != "Bundle" || b["type"] != "history" {
		t.Fatalf("not a history Bundle: %v", b)
	}
	for i, raw := range b["entry"].([]any) {
		en := raw.(map[string]any)
		if en["request"] == nil || en["response"] == nil {
			t.Errorf("entry %d lacks request or response: %v", i, en)
		}
	}
	first := b["entry"].([]any)[0].(map[string]any)
	if u := first["request"].(map[string]any)["url"].(string); !strings.HasSuffix(u, "Subscription/"+id+"/$status") {
		t.Errorf("status entry request url %s", u)
	}
	if !strings.HasPrefix(first["fullUrl"].(string), "urn:uuid:") {
		t.Errorf("status entry fullUrl %v", first["fullUrl"])
	}
	meta := first["resource"].(map[string]any)["meta"].(map[string]any)
	if fmt.Sprint(meta["profile"]) != "["+subscriptions.ProfileStatus+"]" {
		t.Errorf("status profile %v", meta["profile"])
	}
}

func eventParts(t *testing.T, b map[string]any) [][]any {
	var out [][]any
	for _, p := range params(t, b) {
		pm := p.(map[string]any)
		if pm["name"] == "notification-event" {
			out = append(out, pm["part"].([]any))
		}
	}
	return out
}

func focusRef(t *testing.T, b map[string]any) string {
	for _, parts := range eventParts(t, b) {
		for _, p := range parts {
			pm := p.(map[string]any)
			if pm["name"] == "focus" {
				return pm["valueReference"].(map[string]any)["reference"].(string)
			}
		}
	}
	return ""
}

// eventFoci maps the event-number of each notification-event of b to its
// focus reference (a notification may carry several events).
func eventFoci(t *testing.T, b map[string]any) map[string]string {
	out := map[string]string{}
	for _, parts := range eventParts(t, b) {
		var number, focus string
		for _, p := range parts {
			pm := p.(map[string]any)
			switch pm["name"] {
			case "event-number":
				number, _ = pm["valueString"].(string)
			case "focus":
				focus = pm["valueReference"].(map[string]any)["reference"].(string)
			}
		}
		out[number] = focus
	}
	return out
}

func additionalContext(t *testing.T, b map[string]any) []string {
	var out []string
	for _, parts := range eventParts(t, b) {
		for _, p := range parts {
			pm := p.(map[string]any)
			if pm["name"] == "additional-context" {
				out = append(out, pm["valueReference"].(map[string]any)["reference"].(string))
			}
		}
	}
	return out
}

func capabilityResource(t *testing.T, cs map[string]any, typ string) map[string]any {
	t.Helper()
	if fmt.Sprint(cs["instantiates"]) != "[http://hl7.org/fhir/uv/subscriptions-backport/CapabilityStatement/backport-subscription-server-r4]" {
		t.Errorf("instantiates %v", cs["instantiates"])
	}
	for _, r := range cs["rest"].([]any)[0].(map[string]any)["resource"].([]any) {
		if rm := r.(map[string]any); rm["type"] == typ {
			return rm
		}
	}
	t.Fatalf("no %s in the CapabilityStatement", typ)
	return nil
}

func TestClassicRestHook(t *testing.T) {
	rcv := newReceiver(t)
	e := newEnv(t)
	classic := func(payload string) map[string]any {
		ch := map[string]any{"type": "rest-hook", "endpoint": rcv.srv.URL + "/classic-" + payload, "header": []any{"Authorization: Bearer C"}}
		if payload != "" {
			ch["payload"] = payload
		}
		return map[string]any{"resourceType": "Subscription", "status": "requested", "reason": "classic",
			"criteria": "Observation?subject=Patient/p1&status=final", "channel": ch}
	}
	empty := e.mustDo(201, "POST", "/Subscription", classic(""))["id"].(string)
	full := e.mustDo(201, "POST", "/Subscription", classic("application/fhir+json"))["id"].(string)
	e.waitStatus(empty, "active")
	e.waitStatus(full, "active")

	e.mustDo(201, "POST", "/Observation", observation("p2", "final"))
	e.mustDo(201, "POST", "/Observation", observation("p1", "preliminary"))
	obs := e.mustDo(201, "POST", "/Observation", observation("p1", "final"))
	obsID := obs["id"].(string)
	obs["valueString"] = "updated"
	e.mustDo(200, "PUT", "/Observation/"+obsID, obs)

	posts := rcv.waitN("empty POSTs", 2, func(r received) bool { return r.Path == "/classic-" })
	for _, p := range posts {
		if p.Method != "POST" || len(p.Body) != 0 || p.Header.Get("Authorization") != "Bearer C" {
			t.Errorf("classic empty notification: %s body %q auth %q", p.Method, p.Body, p.Header.Get("Authorization"))
		}
	}
	puts := rcv.waitN("PUTs", 2, func(r received) bool {
		return strings.HasPrefix(r.Path, "/classic-application/fhir+json/")
	})
	for i, p := range puts {
		if p.Method != "PUT" || p.Path != "/classic-application/fhir+json/Observation/"+obsID {
			t.Errorf("PUT %d: %s %s", i, p.Method, p.Path)
		}
		meta := p.JSON["meta"].(map[string]any)
		if meta["versionId"] != fmt.Sprint(i+1) {
			t.Errorf("PUT %d carries version %v", i, meta["versionId"])
		}
	}
	// No other notification: a marker, a later matching create, reaches
	// the payload subscription (delivered in order, so every earlier event
	// went first); both subscriptions' events of every change up to it
	// are recorded by then, so the empty one's count is final too.
	marker := e.mustDo(201, "POST", "/Observation", observation("p1", "final"))["id"].(string)
	rcv.waitFor("the marker's PUT", func(r received) bool {
		return r.Path == "/classic-application/fhir+json/Observation/"+marker
	})
	st, err := e.m.State(context.Background(), empty)
	if err != nil || st.EventCount != 3 {
		t.Errorf("the empty subscription has %d events (%v), want 3: create, update, marker", st.EventCount, err)
	}
	rcv.waitN("empty POSTs with the marker's", 3, func(r received) bool { return r.Path == "/classic-" })
	if n := len(rcv.matching(func(r received) bool { return strings.HasPrefix(r.Path, "/classic") })); n != 6 {
		t.Errorf("%d classic notifications, want 6 (create and update of the matching observation and the marker, twice)", n)
	}
}

func TestRejections(t *testing.T) {
	rcv := newReceiver(t)
	e := newEnv(t)
	e.mustDo(201, "PUT", "/SubscriptionTopic/encounter-start", encounterTopic())
	good := func() map[string]any {
		return topicSub(rcv.srv.URL, encTopic, "id-only", "Encounter?patient=Patient/1")
	}
	ch := func(s map[string]any) map[string]any { return s["channel"].(map[string]any) }
	cases := []struct {
		name   string
		mutate func(map[string]any)
		expr   string
	}{
		{"CrossVersionFilter", func(s map[string]any) {
			s["_criteria"] = map[string]any{"extension": []any{map[string]any{
				"url":         "http://hl7.org/fhir/5.0/subscriptions-backport/StructureDefinition/backport-filter-criteria",
				"valueString": "Encounter.patient=Patient/123"}}}
		}, "Subscription.criteria.extension[0]"},
		{"LookalikeExtension", func(s map[string]any) {
			channelExt(s, "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-heartbeat", "valueUnsignedInt", 5)
		}, "Subscription.channel.extension[0]"},
		{"R5SubscriptionExtension", func(s map[string]any) {
			s["extension"] = []any{map[string]any{"url": "http://hl7.org/fhir/5.0/StructureDefinition/extension-Subscription.identifier", "valueString": "x"}}
		}, "Subscription.extension[0]"},
		{"ModifierExtension", func(s map[string]any) {
			ch(s)["modifierExtension"] = []any{map[string]any{"url": "http://example.org/x", "valueBoolean": true}}
		}, "Subscription.channel.modifierExtension"},
		{"UnknownTopic", func(s map[string]any) { s["criteria"] = "http://example.org/no-such-topic" }, "Subscription.criteria"},
		{"FilterNotAllowed", func(s map[string]any) {
			s["_criteria"].(map[string]any)["extension"].([]any)[0].(map[string]any)["valueString"] = "Encounter?status=finished"
		}, "Subscription.criteria.extension[0]"},
		{"ChannelTypeEmail", func(s map[string]any) { ch(s)["type"] = "email" }, "Subscription.channel.type"},
		{"CustomChannelType", func(s map[string]any) {
			ch(s)["_type"] = map[string]any{"extension": []any{map[string]any{"url": subscriptions.ExtChannelType,
				"valueCoding": map[string]any{"system": "http://example.org", "code": "zulip"}}}}
		}, "Subscription.channel.type.extension[0]"},
		{"EndpointScheme", func(s map[string]any) { ch(s)["endpoint"] = "ftp://example.org/x" }, "Subscription.channel.endpoint"},
		{"EndpointMissing", func(s map[string]any) { delete(ch(s), "endpoint") }, "Subscription.channel.endpoint"},
		{"PayloadXML", func(s map[string]any) { ch(s)["payload"] = "application/fhir+xml" }, "Subscription.channel.payload"},
		{"PayloadFHIRVersion", func(s map[string]any) { ch(s)["payload"] = "application/fhir+json; fhirVersion=5.0" }, "Subscription.channel.payload"},
		{"PayloadMissing", func(s map[string]any) { delete(ch(s), "payload") }, "Subscription.channel.payload"},
		{"ContentUnknown", func(s map[string]any) {
			ch(s)["_payload"] = map[string]any{"extension": []any{map[string]any{"url": subscriptions.ExtPayloadContent, "valueCode": "everything"}}}
		}, "Subscription.channel.payload.extension[0].valueCode"},
		{"ContentMissing", func(s map[string]any) { delete(ch(s), "_payload") }, "Subscription.channel.payload.extension"},
		{"HeaderInjection", func(s map[string]any) { ch(s)["header"] = []any{"X-A: 1\r\nX-B: 2"} }, "Subscription.channel.header[0]"},
		{"HeaderNoColon", func(s map[string]any) { ch(s)["header"] = []any{"Bearer abc"} }, "Subscription.channel.header[0]"},
		{"StatusError", func(s map[string]any) { s["status"] = "error" }, "Subscription.status"},
		{"HeartbeatZero", func(s map[string]any) {
			channelExt(s, subscriptions.ExtHeartbeatPeriod, "valueUnsignedInt", 0)
		}, "Subscription.channel.extension[0].valueUnsignedInt"},
		{"ClassicUnknownParam", func(s map[string]any) { s["criteria"] = "Observation?nonsense=1"; delete(s, "_criteria") }, "Subscription.criteria"},
		{"ClassicCount", func(s map[string]any) { s["criteria"] = "Observation?_count=1"; delete(s, "_criteria") }, "Subscription.criteria"},
		{"ClassicChainOnToken", func(s map[string]any) { s["criteria"] = "Observation?code.name=x"; delete(s, "_criteria") }, "Subscription.criteria"},
		{"ClassicIncludeIterate", func(s map[string]any) {
			s["criteria"] = "Observation?_include:iterate=Observation:subject"
			delete(s, "_criteria")
		}, "Subscription.criteria"},
		{"ClassicInclude", func(s map[string]any) {
			s["criteria"] = "Observation?_include=Observation:subject"
			delete(s, "_criteria")
		}, "Subscription.criteria"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := good()
			tc.mutate(s)
			r := e.do("POST", "/Subscription", s)
			if r.Status < 400 || r.Status >= 500 {
				t.Fatalf("status %d, want 4xx: %s", r.Status, r.Body)
			}
			if r.JSON["resourceType"] != "OperationOutcome" {
				t.Fatalf("not an OperationOutcome: %s", r.Body)
			}
			is := r.JSON["issue"].([]any)[0].(map[string]any)
			if fmt.Sprint(is["expression"]) != "["+tc.expr+"]" {
				t.Errorf("expression %v, want %s (%v)", is["expression"], tc.expr, is["diagnostics"])
			}
		})
	}
	t.Run("ActiveBecomesRequested", func(t *testing.T) {
		s := good()
		s["status"] = "active"
		s["channel"].(map[string]any)["payload"] = "application/json; fhirVersion=4.0"
		got := e.mustDo(201, "POST", "/Subscription", s)
		if got["status"] != "requested" {
			t.Errorf("status %v, want requested", got["status"])
		}
	})
}

func TestErrorAndRecovery(t *testing.T) {
	rcv := newReceiver(t)
	e := newEnv(t)
	sub := topicSub(rcv.srv.URL, resultTopic, "id-only", "Observation?patient=Patient/p1")
	id := e.mustDo(201, "POST", "/Subscription", sub)["id"].(string)
	e.waitStatus(id, "active")

	rcv.status.Store(500)
	for range 3 {
		e.mustDo(201, "POST", "/Observation", observation("p1", "final"))
	}
	errored := e.waitStatus(id, "error")
	if msg, _ := errored["error"].(string); !strings.Contains(msg, "500") {
		t.Errorf("Subscription.error %q should name the failure", msg)
	}
	if rcv.failures() < 3 {
		t.Errorf("%d failed attempts before error, want at least MaxFailures=3", rcv.failures())
	}
	// $status reads the manager's state, which adopts the stored version
	// just after the store wrote it: give it a moment to converge.
	st := e.mustDo(200, "GET", "/Subscription/"+id+"/$status", nil)
	for deadline := time.Now().Add(5 * time.Second); param(t, st, "status") != "error" && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		st = e.mustDo(200, "GET", "/Subscription/"+id+"/$status", nil)
	}
	if param(t, st, "status") != "error" || param(t, st, "events-since-subscription-start") != "3" {
		t.Errorf("$status while failing: %v", params(t, st))
	}

	rcv.status.Store(200)
	e.waitStatus(id, "active")
	got := rcv.waitEvents(id, 3)
	var nums []string
	for _, n := range got {
		nums = append(nums, eventNumbers(t, n.JSON)...)
	}
	t.Logf("3 events that waited for the receiver came in %d notification(s): %v", len(got), nums)
	if !slices.Equal(nums, []string{"1", "2", "3"}) {
		t.Errorf("events after recovery %v, want [1 2 3] in order", nums)
	}
	// no backport-max-count: events that waited share notifications
	// (DefaultMaxCount), they do not cost a round trip each
	if len(got) >= 3 {
		t.Errorf("%d notifications for 3 events that waited, want them sharing (DefaultMaxCount %d)", len(got), subscriptions.DefaultMaxCount)
	}
	if r := e.mustDo(200, "GET", "/Subscription/"+id, nil); r["error"] != nil {
		t.Errorf("Subscription.error %v still set after recovery", r["error"])
	}
}

func TestHandshakeFailureAndReactivation(t *testing.T) {
	rcv := newReceiver(t)
	e := newEnv(t)
	rcv.status.Store(503)
	sub := topicSub(rcv.srv.URL, resultTopic, "empty")
	created := e.mustDo(201, "POST", "/Subscription", sub)
	id := created["id"].(string)
	failed := e.waitStatus(id, "error")
	if msg, _ := failed["error"].(string); !strings.Contains(msg, "handshake") {
		t.Errorf("Subscription.error %q", msg)
	}
	rcv.status.Store(200)
	failed["status"] = "requested"
	e.mustDo(200, "PUT", "/Subscription/"+id, failed)
	hs := rcv.waitFor("handshake after re-activation", forSub(t, id, "handshake"))
	if param(t, hs.JSON, "status") != "requested" {
		t.Errorf("handshake status %v", param(t, hs.JSON, "status"))
	}
	e.waitStatus(id, "active")
}

// TestRoutesCoexist checks the operation routes and the guarded delete do
// not shadow the generic REST routes of the same types.
func TestRoutesCoexist(t *testing.T) {
	rcv := newReceiver(t)
	e := newEnv(t)
	e.mustDo(201, "PUT", "/SubscriptionTopic/encounter-start", encounterTopic())
	e.mustDo(200, "GET", "/SubscriptionTopic/encounter-start", nil)
	e.mustDo(200, "GET", "/SubscriptionTopic/encounter-start/_history", nil)
	id := e.mustDo(201, "POST", "/Subscription", topicSub(rcv.srv.URL, encTopic, "empty"))["id"].(string)
	e.mustDo(200, "GET", "/Subscription/"+id+"/_history/1", nil)
	e.mustDo(200, "GET", "/Subscription?status=requested,active", nil)
	e.mustDo(200, "POST", "/Subscription/$status", nil)
	e.mustDo(200, "DELETE", "/Subscription/"+id, nil)
	e.mustDo(404, "GET", "/Subscription/"+id+"/$status", nil)
	// the topic is free again once its subscription is gone
	e.mustDo(200, "DELETE", "/SubscriptionTopic/encounter-start", nil)
	e.mustDo(422, "POST", "/Subscription", topicSub(rcv.srv.URL, encTopic, "empty"))
	e.mustDo(422, "PUT", "/SubscriptionTopic/bad", map[string]any{"resourceType": "SubscriptionTopic", "id": "bad", "status": "active"})
}

// TestIdleSubscriptionsHoldNoLane: a rest-hook subscription that has only
// been hand-shaken keeps no delivery lane in memory (100,000 idle ones
// would hold 25 MB); its first event builds one, which is then kept, and
// the event is delivered once, numbered 1.
func TestIdleSubscriptionsHoldNoLane(t *testing.T) {
	rcv := newReceiver(t)
	e := newEnv(t)
	e.mustDo(201, "PUT", "/SubscriptionTopic/encounter-start", encounterTopic())
	var ids []string
	for range 3 {
		sub := topicSub(rcv.srv.URL+"/hook", encTopic, "id-only", "Encounter?patient=Patient/p1")
		ids = append(ids, e.mustDo(201, "POST", "/Subscription", sub)["id"].(string))
	}
	for _, id := range ids {
		rcv.waitFor("handshake", forSub(t, id, "handshake"))
		e.waitStatus(id, "active")
	}
	lanes := func() int { return e.m.Stats().DeliveryLanes }
	deadline := time.Now().Add(10 * time.Second)
	for lanes() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("lanes after 3 handshakes: %d", lanes())
	if n := lanes(); n != 0 {
		t.Fatalf("%d delivery lanes held by subscriptions that never had an event, want 0", n)
	}

	e.mustDo(201, "POST", "/Encounter", encounter("p1"))
	for _, id := range ids {
		ev := rcv.waitFor("event", forSub(t, id, "event-notification"))
		if got := eventNumbers(t, ev.JSON); len(got) != 1 || got[0] != "1" {
			t.Errorf("Subscription/%s: event numbers %v, want [1]", id, got)
		}
	}
	t.Logf("lanes after one event each: %d", lanes())
	if n := lanes(); n != len(ids) {
		t.Errorf("%d delivery lanes after each subscription delivered an event, want %d", n, len(ids))
	}
	if n := len(rcv.matching(func(r received) bool { return kindOf(t, r) == "event-notification" })); n != len(ids) {
		t.Errorf("%d event notifications, want %d (one each)", n, len(ids))
	}
}
