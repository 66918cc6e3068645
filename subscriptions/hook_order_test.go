package subscriptions

import (
	"context"
	"testing"

	"github.com/fhirsub/fhirsub/conformance/smart"
	"github.com/fhirsub/fhirsub/fhirstore"
)

// TestHookAfterMatcher: when the matcher meets a new requested
// Subscription in the feed before the write hook runs (the two race), it
// files it with a synced lane and keeps its body for the
// activation; the hook that follows neither decodes nor parses the
// version again, still ends the owner's quota hold, and the activation
// finds the body kept.
func TestHookAfterMatcher(t *testing.T) {
	ctx := context.Background()
	m, _ := goldenManager(t)
	raw := []byte(`{"resourceType":"Subscription","id":"n1","meta":{"versionId":"1"},"status":"requested","reason":"r",` +
		`"criteria":"https://fhirsub.org/SubscriptionTopic/result-available",` +
		`"channel":{"type":"rest-hook","endpoint":"https://hooks.example.org/x","payload":"application/fhir+json",` +
		`"_payload":{"extension":[{"url":"` + ExtPayloadContent + `","valueCode":"id-only"}]}}}`)
	body, err := fhirstore.Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	owner := smart.Full()
	owner.Subject = "clinician-1"
	enc, err := owner.EncodeString()
	if err != nil {
		t.Fatal(err)
	}
	stampAccess(body, enc)
	if err := m.reg.hold(owner, 10, m.now()); err != nil { // the create's place (Validate)
		t.Fatal(err)
	}
	res := &fhirstore.Resource{Type: "Subscription", ID: "n1", VersionID: "1", Body: raw}
	c := fhirstore.Change{Seq: 5, Type: "Subscription", ID: "n1", VersionID: "1", Interaction: fhirstore.InteractionCreate}
	m.mt.feedSubscription(ctx, c, &loaded{c: c, res: res, cur: body, resOK: true}, true) // as subscriptionRun
	if s, ok := m.reg.get("n1"); !ok || s.VersionID != "1" {
		t.Fatal("the matcher did not file the new subscription")
	}
	if ln := m.dl.lanes.get("n1"); ln == nil || !ln.synced {
		t.Error("the matcher filed a new id without a synced lane")
	}

	// the hook's own copy of the version: it must not need it
	committed := &fhirstore.Resource{Type: "Subscription", ID: "n1", VersionID: "1", Body: []byte("not JSON: not decoded")}
	if err := m.committedSubscription(ctx, committed, fhirstore.InteractionCreate); err != nil {
		t.Errorf("the hook decoded a version the matcher had filed: %v", err)
	}
	if n := len(m.reg.holds[quotaKey(owner)]); n != 0 {
		t.Errorf("the owner still holds %d place(s) after the create registered, want 0", n)
	}
	kept := m.bodies.take("n1", "1", m.now())
	if kept == nil || kept["status"] != "requested" {
		t.Errorf("the activation finds %v kept, want the matcher's body", kept)
	}
}
