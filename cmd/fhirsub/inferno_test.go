package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestInfernoPort is our own Go port of every server test of Inferno's
// Subscriptions test kit (suite subscriptions_r5_backport_r4_server, R4
// Backport IG 1.1.0), run against the shipped binary with Inferno's timing
// model (see infernoReceiver): the receiver refuses everything until the
// run is waiting, which starts only after the client has read the 201 of
// its POST /Subscription. The suite's test ids are kept as the names of
// the checks. A few checks the Inferno suite lists as out of its scope
// ($events, the websocket workflow, the operations in the
// CapabilityStatement) follow, named "fhirsub_*".
//
// Inferno reads a tester's Subscription JSON and waits for the tester to
// trigger events by hand; here the test writes critical Observations for
// one patient, the one the tester's Subscription filters on (so every
// group's events also reach the Subscriptions of the earlier groups, as in
// a real session), and it stops waiting once the handshake, the events
// written since the creation and (when asked) a heartbeat are in. The
// session's one Notification Access Token is shared by every group, as
// in Inferno.
//
// Two sessions run, each on a fresh server: the suite's preferred
// application/fhir+json with the run waiting 300 ms after the 201, and the
// application/json Inferno asks testers for, with a slow tester: waiting
// starts 2.5 s after the 201 (several handshake attempts refused).
func TestInfernoPort(t *testing.T) {
	if testing.Short() {
		t.Skip("Inferno port skipped in -short mode (starts the binary)")
	}
	const perSession = 38
	sessions := []struct {
		name, payload string
		waitDelay     time.Duration
	}{
		{"fhir+json, waiting 300ms after the 201", "application/fhir+json", 300 * time.Millisecond},
		{"application/json, waiting 2.5s after the 201", "application/json", 2500 * time.Millisecond},
	}
	var results []infernoResult
	refused := 0
	for _, c := range sessions {
		srv := startServerProc(t, "--log-level", "error") // --resthook-allow 127.0.0.1/32 (the receiver)
		s := &infernoSession{t: t, srv: srv, rcv: newInfernoReceiver(t), token: "inferno-notification-token-1",
			payload: c.payload, waitDelay: c.waitDelay}
		s.run()
		srv.stop()
		for i := range s.results {
			s.results[i].id = c.name + ": " + s.results[i].id
		}
		results = append(results, s.results...)
		refused += s.rcv.refusedCount()
	}

	passed := 0
	for _, r := range results {
		if len(r.f.errors) == 0 {
			passed++
		}
	}
	line := fmt.Sprintf("inferno port: tests=%d, passed=%d (%d sessions; receivers refused %d requests before waiting)",
		len(results), passed, len(sessions), refused)
	t.Log(line)
	reportFigure(line)
	for _, r := range results {
		for _, w := range r.f.warnings {
			t.Logf("%s: warning: %s", r.id, w)
		}
		if len(r.f.errors) > 0 {
			t.Errorf("%s failed: %s", r.id, strings.Join(r.f.errors, "; "))
		}
	}
	if want := perSession * len(sessions); passed != len(results) || len(results) < want {
		t.Errorf("inferno port: %d of %d tests passed, want all of at least %d", passed, len(results), want)
	}
}

// run is one Inferno session: the suite's groups in its order, then the
// checks beyond its scope.
func (s *infernoSession) run() {
	s.patient = mustFHIR(s.t, http.StatusCreated, "POST", s.srv.base+"/Patient",
		map[string]any{"resourceType": "Patient", "name": []any{map[string]any{"family": "Inferno"}}})["id"].(string)
	// 1 Subscription Workflow: interaction, then verification.
	wf := s.interaction("workflow", "id-only", 1)
	s.verification(wf)
	// 2 CapabilityStatement.
	s.capabilityStatement()
	// 3 Event notification groups: interaction, verification, content.
	for _, content := range []string{"empty", "id-only", "full-resource"} {
		run := s.interaction(content, content, 0)
		s.verification(run)
		s.contentConformance(run)
	}
	// 4 Handshake and heartbeat, over every Subscription created.
	s.handshakeConformance()
	s.heartbeatConformance()
	// 5 $status.
	s.statusInvocation()
	// 6 Rejection.
	s.rejections(wf)
	// Beyond Inferno's scope.
	s.eventsOperation(wf)
	s.websocketWorkflow()
}

// infernoSession is one Inferno test session against the server.
type infernoSession struct {
	t       *testing.T
	srv     *serverProc
	rcv     *infernoReceiver
	token   string // the Notification Access Token
	payload string // channel.payload of the tester's Subscriptions
	// waitDelay is the time between the client reading the 201 and the
	// run waiting, the window in which Inferno's listener answers 500.
	waitDelay time.Duration
	patient   string           // the patient the tester's Subscription filters on
	written   int              // critical Observations written for it
	created   []map[string]any // the 201 bodies of the tagged creations
	results   []infernoResult
}

// infernoResult is the outcome of one ported test.
type infernoResult struct {
	id string
	f  findings
}

// check runs one ported test and keeps its findings.
func (s *infernoSession) check(id string, fn func(f *findings)) {
	var f findings
	fn(&f)
	s.results = append(s.results, infernoResult{id: id, f: f})
}

// interactionRun is what one interaction group did.
type interactionRun struct {
	group, content string
	sent           map[string]any // the Subscription as posted
	created        map[string]any // the 201 body (nil when refused)
	id             string
	before         int // s.written when the Subscription was created
	events         int // critical Observations written since, as seen by the run's end
}

// baseSubscription is a tester's Subscription JSON for group: the IG's
// sample shape (past end, timeout, max-count) on the critical-result
// topic, filtered to the group's own patient.
func baseSubscription(endpoint, content, patient string, heartbeat int) map[string]any {
	sub := topicSubscription(endpoint, criticalTopic, content, "Observation?patient=Patient/"+patient)
	sub["end"] = "2020-12-31T12:00:00Z"
	sub["reason"] = "Inferno port: " + content
	exts := []any{
		map[string]any{"url": "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-timeout", "valueUnsignedInt": 60},
		map[string]any{"url": "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-max-count", "valuePositiveInt": 20},
	}
	if heartbeat > 0 {
		exts = append(exts, map[string]any{"url": "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-heartbeat-period", "valueUnsignedInt": heartbeat})
	}
	sub["channel"].(map[string]any)["extension"] = exts
	return sub
}

// interaction is Inferno's interaction group: subscription_conformance,
// notification_delivery and creation_response_conformance.
func (s *infernoSession) interaction(group, content string, heartbeat int) *interactionRun {
	t := s.t
	run := &interactionRun{group: group, content: content}
	run.sent = baseSubscription(s.rcv.URL(), content, s.patient, heartbeat)
	jmap(run.sent["channel"])["payload"] = s.payload

	s.check(group+"/subscription_conformance", func(f *findings) {
		ch := jmap(run.sent["channel"])
		if ch["type"] != "rest-hook" {
			f.errorf("channel.type %v, want rest-hook", ch["type"])
		}
		if c := jstr(run.sent["criteria"]); !strings.HasPrefix(c, "http://") && !strings.HasPrefix(c, "https://") {
			f.errorf("criteria %q is not an http(s) URL", c)
		}
		if raw, _ := json.Marshal(run.sent); strings.Contains(string(raw), "/StructureDefinition/extension-Subscription.") {
			f.warnf("cross-version extension on the Subscription")
		}
		// Inferno points the channel at its listener and adds its bearer token.
		if ch["endpoint"] != s.rcv.URL() {
			f.warnf("The subscription url was changed from %v to %s", ch["endpoint"], s.rcv.URL())
			ch["endpoint"] = s.rcv.URL()
		}
		ch["header"] = []any{"X-Tester-Session: inferno port", "Authorization: Bearer " + s.token}
	})

	s.check(group+"/notification_delivery", func(f *findings) {
		st, body, err := fhirDo(t.Context(), "POST", s.srv.base+"/Subscription", run.sent)
		if err != nil || st != http.StatusCreated {
			f.errorf("POST /Subscription: status %d, err %v, want 201: %v", st, err, body)
			return
		}
		run.created, run.id, run.before = body, jstr(body["id"]), s.written
		s.created = append(s.created, body)
		// The tester's event, written before the run is waiting.
		s.writeEvent(run)
		time.Sleep(s.waitDelay) // Inferno's latency between reading the 201 and waiting, not an absence proof
		s.rcv.wait(s.token, true)
		defer s.rcv.wait(s.token, false)
		if !s.rcv.until(30*time.Second, func() bool { return len(s.rcv.requests("handshake", run.id)) > 0 }) {
			f.errorf("no handshake kept for Subscription/%s within 30s of waiting", run.id)
		}
		s.writeEvent(run) // and one written while it waits
		done := s.rcv.until(30*time.Second, func() bool {
			return contiguous(s.eventsKept(run.id), run.events) && (heartbeat == 0 || len(s.rcv.requests("heartbeat", run.id)) > 0)
		})
		if !done {
			f.errorf("Subscription/%s: events %v kept (want 1..%d), %d heartbeats (asked every %ds) after 30s of waiting",
				run.id, sortedKeys(s.eventsKept(run.id)), run.events, len(s.rcv.requests("heartbeat", run.id)), heartbeat)
		}
	})

	s.check(group+"/creation_response_conformance", func(f *findings) {
		if run.created == nil {
			f.errorf("no Subscription was created")
			return
		}
		if run.created["resourceType"] != "Subscription" {
			f.errorf("the 201 body is a %v", run.created["resourceType"])
		}
		if ty := jmap(run.created["channel"])["type"]; ty != "rest-hook" {
			f.errorf("channel.type %v in the 201 body, want rest-hook", ty)
		}
		if st := run.created["status"]; st != "requested" {
			f.errorf("status %v in the 201 body, want requested", st)
		}
	})
	return run
}

// writeEvent writes one critical Observation for the session's patient,
// as the tester would to trigger the run's Subscription.
func (s *infernoSession) writeEvent(run *interactionRun) {
	s.written++
	run.events = s.written - run.before
	mustFHIR(s.t, http.StatusCreated, "POST", s.srv.base+"/Observation",
		criticalObservation(s.patient, loincPotassium, fmt.Sprintf("inferno-%s-%d", run.group, s.written)))
}

// eventsKept returns how many times each event number was kept for sub.
func (s *infernoSession) eventsKept(sub string) map[int]int {
	seen := map[int]int{}
	for _, r := range s.rcv.requests("event-notification", sub) {
		var b map[string]any
		if json.Unmarshal(r.Body, &b) != nil {
			continue
		}
		if n, err := parseNotification(b); err == nil {
			for _, e := range n.Events {
				seen[e]++
			}
		}
	}
	return seen
}

// checkDelivery is Inferno's check of the HTTP request of a notification:
// Content-Type starts with channel.payload and every channel.header was
// sent with its exact value.
func checkDelivery(f *findings, r infernoRequest, sent map[string]any) {
	ch := jmap(sent["channel"])
	if p := jstr(ch["payload"]); !strings.HasPrefix(r.ContentType, p) {
		f.errorf("Content-Type %q does not start with channel.payload %q", r.ContentType, p)
	}
	for _, h := range jlist(ch["header"]) {
		name, value, _ := strings.Cut(jstr(h), ": ")
		if got := r.Header.Values(name); len(got) != 1 || got[0] != value {
			f.errorf("header %s sent as %q, want %q", name, got, value)
		}
	}
}
