package main

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
)

// verification is Inferno's interaction verification group:
// notification_presence and notification_conformance (the workflow group
// and each event notification group run it on their Subscription).
func (s *infernoSession) verification(run *interactionRun) {
	s.check(run.group+"/notification_presence", func(f *findings) {
		if run.id == "" || len(s.rcv.requests("", run.id)) == 0 {
			f.errorf("No notifications were received from the server related to Subscription %q", run.id)
		}
	})
	s.check(run.group+"/notification_conformance", func(f *findings) {
		reqs := s.rcv.requests("event-notification", run.id)
		if len(reqs) == 0 {
			f.errorf("no event-notification kept for Subscription/%s", run.id)
		}
		for _, r := range reqs {
			if b := checkNotification(f, r.Body, "event-notification", run.id, "active"); b != nil {
				checkEventCommon(f, b, run.content)
			}
			checkDelivery(f, r, run.sent)
		}
	})
}

// contentConformance is the last test of an event notification group's
// verification (empty, id-only, full-resource conformance).
func (s *infernoSession) contentConformance(run *interactionRun) {
	s.check(run.group+"/"+strings.ReplaceAll(run.content, "-", "_")+"_conformance", func(f *findings) {
		reqs := s.rcv.requests("event-notification", run.id)
		if len(reqs) == 0 {
			f.errorf("no %s event-notification kept for Subscription/%s", run.content, run.id)
		}
		for _, r := range reqs {
			b := checkNotification(f, r.Body, "event-notification", run.id, "active")
			checkDelivery(f, r, run.sent)
			if b == nil {
				continue
			}
			checkEventCommon(f, b, run.content)
			switch run.content {
			case "empty":
				checkEmpty(f, b)
			case "id-only":
				checkIDOnly(f, b, "Observation")
			case "full-resource":
				checkFullResource(f, b, "Observation")
			}
		}
	})
}

// capabilityStatement is Inferno's CapabilityStatement group
// (cs_conformance, topic_discovery) and the brief's operations check.
func (s *infernoSession) capabilityStatement() {
	var subRes map[string]any
	var cs map[string]any
	s.check("capability_statement/cs_conformance", func(f *findings) {
		st, body, err := fhirDo(s.t.Context(), "GET", s.srv.base+"/metadata", nil)
		if err != nil || st != http.StatusOK || body["resourceType"] != "CapabilityStatement" {
			f.errorf("GET /metadata: status %d, err %v, resourceType %v", st, err, body["resourceType"])
			return
		}
		cs = body
		checkCapabilityBase(f, body)
		var rest map[string]any
		for _, r := range jlist(body["rest"]) {
			if jmap(r)["mode"] == "server" {
				rest = jmap(r)
			}
		}
		if rest == nil {
			f.errorf("Capability Statement missing entry in `rest` with a `mode` set to 'server'")
			return
		}
		for _, r := range jlist(rest["resource"]) {
			if jmap(r)["type"] == "Subscription" {
				subRes = jmap(r)
			}
		}
		if subRes == nil {
			f.errorf("Capability Statement missing `Subscription` resource in `rest` field")
			return
		}
		if !slices.Contains(jlist(subRes["supportedProfile"]), any(backportSubURL)) {
			f.errorf("Subscription supportedProfile %v lacks %s", subRes["supportedProfile"], backportSubURL)
		}
	})
	s.check("capability_statement/topic_discovery", func(f *findings) {
		if subRes == nil {
			f.errorf("No Capability Statement received in previous test")
			return
		}
		var canon []string
		for _, e := range jlist(subRes["extension"]) {
			if jmap(e)["url"] == topicCanonExt {
				canon = append(canon, jstr(jmap(e)["valueCanonical"]))
			}
		}
		if len(canon) == 0 {
			f.errorf("The server SHOULD support topic discovery via the CapabilityStatement SubscriptionTopic Canonical extension")
		}
		for _, c := range s.created {
			if !slices.Contains(canon, jstr(c["criteria"])) {
				f.errorf("The SubscriptionTopic Canonical extension should include the topic %v found in Subscription.criteria", c["criteria"])
			}
		}
		// Each advertised topic can be read back as a SubscriptionTopic.
		for _, c := range canon {
			if got := searchAll(s.t, s.srv.base+"/SubscriptionTopic?url="+c); len(got) != 1 {
				f.errorf("GET SubscriptionTopic?url=%s found %d topics, want 1", c, len(got))
			}
		}
	})
	s.check("fhirsub_capability_statement_operations", func(f *findings) {
		if subRes == nil {
			f.errorf("no Subscription resource in the CapabilityStatement")
			return
		}
		ops := map[string]string{}
		for _, o := range jlist(subRes["operation"]) {
			ops[jstr(jmap(o)["name"])] = jstr(jmap(o)["definition"])
		}
		for name, def := range map[string]string{"status": "backport-subscription-status", "events": "backport-subscription-events",
			"get-ws-binding-token": "backport-subscription-get-ws-binding-token"} {
			if ops[name] != backportOpBase+def {
				f.errorf("operation %s defined as %q, want %s", name, ops[name], backportOpBase+def)
			}
		}
		if !slices.Contains(jlist(cs["instantiates"]), any("http://hl7.org/fhir/uv/subscriptions-backport/CapabilityStatement/backport-subscription-server-r4")) {
			f.warnf("instantiates does not name backport-subscription-server-r4")
		}
	})
}

// handshakeConformance is Inferno's handshake_conformance: every
// Subscription created with a 201 got a handshake; each says handshake
// and requested.
func (s *infernoSession) handshakeConformance() {
	s.check("handshake_heartbeat/handshake_conformance", func(f *findings) {
		if len(s.created) == 0 {
			f.errorf("no Subscription was created")
		}
		for _, c := range s.created {
			id := jstr(c["id"])
			hs := s.rcv.requests("handshake", id)
			if len(hs) == 0 {
				f.errorf("Subscription/%s received no handshake", id)
			}
			for _, r := range hs {
				if b := checkNotification(f, r.Body, "handshake", id, "requested"); b != nil {
					ps, _ := statusParts(b)
					if len(params(ps, "notification-event")) > 0 {
						f.errorf("handshake of Subscription/%s carries notification-event", id)
					}
				}
			}
		}
	})
}

// heartbeatConformance is Inferno's heartbeat_conformance.
func (s *infernoSession) heartbeatConformance() {
	s.check("handshake_heartbeat/heartbeat_conformance", func(f *findings) {
		want := map[string]bool{}
		for _, c := range s.created {
			for _, e := range jlist(jmap(c["channel"])["extension"]) {
				if strings.HasSuffix(jstr(jmap(e)["url"]), "/backport-heartbeat-period") && jmap(e)["valueUnsignedInt"] != nil {
					want[jstr(c["id"])] = true
				}
			}
		}
		hb := s.rcv.requests("heartbeat", "")
		if len(hb) == 0 && len(want) > 0 {
			f.errorf("No Heartbeat notifications received when heartbeat was requested by the subscriber")
		}
		for _, r := range hb {
			if !want[r.SubID] {
				f.errorf("Subscription/%s has no heartbeatPeriod, a heartbeat should not be sent", r.SubID)
				continue
			}
			checkNotification(f, r.Body, "heartbeat", r.SubID, "")
		}
	})
}

// statusInvocation is Inferno's status_invocation on the first
// Subscription created.
func (s *infernoSession) statusInvocation() {
	s.check("status_operation/status_invocation", func(f *findings) {
		if len(s.created) == 0 {
			f.errorf("no Subscription was created")
			return
		}
		id := jstr(s.created[0]["id"])
		st, b, err := fhirDo(s.t.Context(), "GET", s.srv.base+"/Subscription/"+id+"/$status", nil)
		if err != nil || st != http.StatusOK || b["resourceType"] != "Bundle" {
			f.errorf("GET Subscription/%s/$status: status %d, err %v, resourceType %v", id, st, err, b["resourceType"])
			return
		}
		if b["type"] != "searchset" {
			f.errorf("Bundle returned from $status operation should be type 'searchset', was %v", b["type"])
		}
		checkBundleBase(f, b)
		found := false
		for _, e := range jlist(b["entry"]) {
			p := jmap(jmap(e)["resource"])
			ref := firstValueRef(jlist(p["parameter"]), "subscription")
			if p["resourceType"] != "Parameters" || ref[strings.LastIndex(ref, "/")+1:] != id {
				continue
			}
			found = true
			checkStatusParameters(f, p)
			if ty := firstValue(jlist(p["parameter"]), "type", "valueCode"); ty != "query-status" {
				f.errorf("$status type %q, want query-status", ty)
			}
		}
		if !found {
			f.errorf("No Subscription status with id %s returned from $status operation", id)
		}
	})
}

func firstValueRef(ps []any, name string) string {
	if got := params(ps, name); len(got) > 0 {
		return jstr(jmap(got[0]["valueReference"])["reference"])
	}
	return ""
}

// clone deep-copies a decoded JSON object.
func clone(m map[string]any) map[string]any {
	raw, _ := json.Marshal(m)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return out
}
