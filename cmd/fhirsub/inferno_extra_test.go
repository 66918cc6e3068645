package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// rejections is Inferno's subscription rejection group: the workflow
// Subscription with one unsupported element each. Inferno passes a test
// when the answer is not 201 (or the element was changed); the port also
// wants a 4xx with an OperationOutcome, as the brief asks.
func (s *infernoSession) rejections(wf *interactionRun) {
	filterExt := "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-filter-criteria"
	cases := []struct {
		id     string
		change func(sub, ch map[string]any)
	}{
		{"reject_subscription_cross_version_extension", func(sub, _ map[string]any) {
			sub["_criteria"] = map[string]any{"extension": []any{map[string]any{
				"url": "http://hl7.org/fhir/5.0/subscriptions-backport/StructureDefinition/backport-filter-criteria", "valueString": "Encounter.patient=Patient/123"}}}
		}},
		{"reject_subscription_topic", func(sub, _ map[string]any) {
			sub["criteria"] = "http://example.org/fhir/SubscriptionTopic/not-implemented"
		}},
		{"reject_subscription_filter", func(sub, _ map[string]any) {
			sub["_criteria"] = map[string]any{"extension": []any{map[string]any{"url": filterExt, "valueString": "Observation?not-a-filter=1"}}}
		}},
		{"reject_subscription_channel_type", func(_, ch map[string]any) { ch["type"] = "email" }},
		{"reject_subscription_channel_endpoint", func(_, ch map[string]any) { ch["endpoint"] = "ftp://127.0.0.1/notifications" }},
		{"reject_subscription_payload_type", func(_, ch map[string]any) { ch["payload"] = "text/plain" }},
		{"reject_subscription_channel_payload_combo", func(_, ch map[string]any) {
			ch["type"] = "message"
			ch["payload"] = "application/fhir+xml"
		}},
	}
	for _, c := range cases {
		s.check("subscription_rejection/"+c.id, func(f *findings) {
			sub := clone(wf.sent)
			c.change(sub, jmap(sub["channel"]))
			st, body, err := fhirDo(s.t.Context(), "POST", s.srv.base+"/Subscription", sub)
			switch {
			case err != nil:
				f.errorf("POST /Subscription: %v", err)
			case st == http.StatusCreated:
				f.errorf("Sending a Subscription with an unsupported value should be rejected; got 201 (Subscription/%v)", body["id"])
			case st < 400 || st >= 500 || body["resourceType"] != "OperationOutcome":
				f.errorf("rejected with status %d and a %v, want 4xx with an OperationOutcome", st, body["resourceType"])
			}
		})
	}
}

// eventsOperation checks $events on the workflow Subscription: a history
// Bundle of type query-event with every event number delivered.
func (s *infernoSession) eventsOperation(wf *interactionRun) {
	s.check("fhirsub_events_operation", func(f *findings) {
		if wf.id == "" {
			f.errorf("no workflow Subscription")
			return
		}
		st, b, err := fhirDo(s.t.Context(), "GET", s.srv.base+"/Subscription/"+wf.id+"/$events?eventsSinceNumber=1", nil)
		if err != nil || st != http.StatusOK {
			f.errorf("GET $events: status %d, err %v: %v", st, err, b)
			return
		}
		raw, _ := json.Marshal(b)
		if checkNotification(f, raw, "query-event", wf.id, "") == nil {
			return
		}
		n, err := parseNotification(b)
		if err != nil {
			f.errorf("$events: %v", err)
			return
		}
		got := map[int]int{}
		for _, e := range n.Events {
			got[e]++
		}
		if want := s.written - wf.before; !contiguous(got, want) {
			f.errorf("$events lists events %v, want 1..%d", sortedKeys(got), want)
		}
		checkEventCommon(f, b, wf.content)
	})
}

// websocketWorkflow is the Backport websocket channel end to end:
// $get-ws-binding-token, bind-with-token on the websocket-url, the
// handshake and an event notification over the socket.
func (s *infernoSession) websocketWorkflow() {
	s.check("fhirsub_websocket_workflow", func(f *findings) {
		patient := mustFHIR(s.t, http.StatusCreated, "POST", s.srv.base+"/Patient",
			map[string]any{"resourceType": "Patient", "name": []any{map[string]any{"family": "Inferno-ws"}}})["id"].(string)
		sub := wsTopicSubscription(criticalTopic, "full-resource", "Observation?patient=Patient/"+patient)
		st, body, err := fhirDo(s.t.Context(), "POST", s.srv.base+"/Subscription", sub)
		if err != nil || st != http.StatusCreated {
			f.errorf("POST websocket Subscription: %d %v %v", st, err, body)
			return
		}
		id := jstr(body["id"])
		token, url, _ := bindingToken(s.t, s.srv.base, id, "")
		ws := dialFHIRWS(s.t, url)
		ws.send("bind-with-token " + token)
		frame, err := ws.next(15 * time.Second)
		if err != nil {
			f.errorf("no frame after bind-with-token: %v", err)
			return
		}
		if b := checkNotification(f, []byte(frame), "handshake", id, ""); b == nil {
			return
		}
		mustFHIR(s.t, http.StatusCreated, "POST", s.srv.base+"/Observation", criticalObservation(patient, loincPotassium, "inferno-ws-1"))
		for {
			frame, err = ws.next(15 * time.Second)
			if err != nil {
				f.errorf("no event notification over the websocket: %v", err)
				return
			}
			if typ, _ := tagNotification([]byte(frame)); typ != "heartbeat" {
				break
			}
		}
		b := checkNotification(f, []byte(frame), "event-notification", id, "active")
		if b == nil {
			return
		}
		checkEventCommon(f, b, "full-resource")
		checkFullResource(f, b, "Observation")
		if n, err := parseNotification(b); err != nil || fmt.Sprint(n.Events) != "[1]" {
			f.errorf("websocket event notification: events %v (%v), want [1]", n.Events, err)
		}
		if !strings.Contains(frame, patient) {
			f.errorf("the event does not name the patient %s", patient)
		}
	})
}
