package subscriptions_test

import (
	"strings"
	"testing"
)

// TestClassicChainedCriteria: classic criteria with a chain and with
// _has are accepted and evaluated when the change is matched.
func TestClassicChainedCriteria(t *testing.T) {
	rcv := newReceiver(t)
	e := newEnv(t)
	sub := func(path, criteria string) string {
		ch := map[string]any{"type": "rest-hook", "endpoint": rcv.srv.URL + path, "payload": "application/fhir+json"}
		s := map[string]any{"resourceType": "Subscription", "status": "requested", "reason": "chain", "criteria": criteria, "channel": ch}
		id := e.mustDo(201, "POST", "/Subscription", s)["id"].(string)
		e.waitStatus(id, "active")
		return id
	}
	person := func(id, family string) map[string]any {
		return map[string]any{"resourceType": "Patient", "id": id, "name": []any{map[string]any{"family": family}}}
	}
	e.mustDo(201, "PUT", "/Patient/p1", person("p1", "Smith"))
	e.mustDo(201, "PUT", "/Patient/p2", person("p2", "Jones"))
	sub("/chain", "Observation?subject:Patient.name=smith&status=final")
	sub("/has", "Patient?_has:Observation:subject:status=amended")

	// p2's observation first: per-subscription order means that, had it
	// matched, it would arrive before p1's.
	o2 := e.mustDo(201, "POST", "/Observation", observation("p2", "final"))["id"].(string)
	o1 := e.mustDo(201, "POST", "/Observation", observation("p1", "final"))["id"].(string)
	got := rcv.waitN("chained match", 1, func(r received) bool { return strings.HasPrefix(r.Path, "/chain/") })
	t.Logf("chain subscription received %s", got[0].Path)
	if got[0].Path != "/chain/Observation/"+o1 {
		t.Fatalf("first chained notification is %s, want /chain/Observation/%s (not %s)", got[0].Path, o1, o2)
	}

	// _has: once p1's observation is amended, updating p2 then p1 fires
	// for p1 only.
	amended := observation("p1", "amended")
	amended["id"] = o1
	e.mustDo(200, "PUT", "/Observation/"+o1, amended)
	e.mustDo(200, "PUT", "/Patient/p2", person("p2", "Jones-Updated"))
	e.mustDo(200, "PUT", "/Patient/p1", person("p1", "Smith-Updated"))
	got = rcv.waitN("_has match", 1, func(r received) bool { return strings.HasPrefix(r.Path, "/has/") })
	t.Logf("_has subscription received %s", got[0].Path)
	if got[0].Path != "/has/Patient/p1" {
		t.Fatalf("first _has notification is %s, want /has/Patient/p1", got[0].Path)
	}
}
