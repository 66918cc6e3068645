package subscriptions_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/fhirsub/fhirsub/fhirstore"
	"github.com/fhirsub/fhirsub/subscriptions"
)

// TestSecretsAreWriteOnly: the rendering of a Subscription masks its
// header values and HMAC secret and drops the creator's access; sending
// that rendering back as an update keeps the stored secrets; a masked
// value with nothing stored behind it is refused.
func TestSecretsAreWriteOnly(t *testing.T) {
	rcv := newReceiver(t)
	e := newEnv(t)
	e.mustDo(201, "PUT", "/SubscriptionTopic/encounter-start", encounterTopic())
	a := accessOf(t, "alice", "pa", "patient/*.rs")
	sub := topicSub(rcv.srv.URL+"/a", encTopic, "id-only")
	channelExt(sub, subscriptions.ExtHMACSecret, "valueString", "HMAC-SECRET-VALUE")
	res, err := e.write(as(a), "", sub)
	if err != nil {
		t.Fatal(err)
	}
	hook := e.m.SubscriptionInterceptor()
	shown := hook.Redact(res.Body)
	for _, secret := range []string{"SECRET-TOKEN", "one, two", "HMAC-SECRET-VALUE", subscriptions.ExtAccess, "alice"} {
		if bytes.Contains(shown, []byte(secret)) {
			t.Errorf("the rendering shows %q: %s", secret, shown)
		}
	}
	for _, want := range []string{`"Authorization: ***"`, `"X-Extra: ***"`, `"valueString":"***"`} {
		if !bytes.Contains(shown, []byte(want)) {
			t.Errorf("the rendering lacks %s: %s", want, shown)
		}
	}

	// Read-modify-write of the rendering keeps every secret.
	m, _ := fhirstore.Decode(shown)
	m["reason"] = "edited"
	if _, err := e.write(as(a), res.ID, m); err != nil {
		t.Fatalf("update with the masked values sent back: %v", err)
	}
	cur, _ := e.db.Read(context.Background(), "Subscription", res.ID)
	for _, secret := range []string{"Authorization: Bearer SECRET-TOKEN", "X-Extra: one, two", "HMAC-SECRET-VALUE", "edited"} {
		if !bytes.Contains(cur.Body, []byte(secret)) {
			t.Errorf("stored after the update lacks %q: %s", secret, cur.Body)
		}
	}
	s, _ := e.m.Subscription(res.ID)
	if s.Secret != "HMAC-SECRET-VALUE" || len(s.Headers) != 2 || s.Headers[0] != "Authorization: Bearer SECRET-TOKEN" {
		t.Errorf("parsed after the update: secret %q headers %q", s.Secret, s.Headers)
	}

	// A new header sent masked has nothing to keep.
	m, _ = fhirstore.Decode(hook.Redact(cur.Body))
	ch := m["channel"].(map[string]any)
	ch["header"] = append(ch["header"].([]any), "X-New: ***")
	if _, err := e.write(as(a), res.ID, m); statusOf(err) != http.StatusUnprocessableEntity {
		t.Errorf("masked value of a header never stored: %v, want 422", err)
	}
	// A real new value replaces the stored one.
	m, _ = fhirstore.Decode(hook.Redact(cur.Body))
	m["channel"].(map[string]any)["header"] = []any{"Authorization: Bearer NEW"}
	if _, err := e.write(as(a), res.ID, m); err != nil {
		t.Fatal(err)
	}
	if s, _ := e.m.Subscription(res.ID); len(s.Headers) != 1 || s.Headers[0] != "Authorization: Bearer NEW" {
		t.Errorf("headers after replacing: %q", s.Headers)
	}
}

// TestSubscriptionQuotaPerOwner: an owner past MaxPerOwner gets 429, other
// owners and the anonymous access of a server without authentication do
// not count against it.
func TestSubscriptionQuotaPerOwner(t *testing.T) {
	rcv := newReceiver(t)
	e := newEnv(t, func(c *subscriptions.Config) { c.MaxPerOwner = 2 })
	e.mustDo(201, "PUT", "/SubscriptionTopic/encounter-start", encounterTopic())
	a := accessOf(t, "alice", "pa", "patient/*.rs")
	b := accessOf(t, "bob", "pb", "patient/*.rs")
	for i := range 2 {
		if _, err := e.write(as(a), "", topicSub(rcv.srv.URL+"/a", encTopic, "id-only")); err != nil {
			t.Fatalf("alice's subscription %d: %v", i+1, err)
		}
	}
	if _, err := e.write(as(a), "", topicSub(rcv.srv.URL+"/a", encTopic, "id-only")); statusOf(err) != http.StatusTooManyRequests {
		t.Errorf("alice's third subscription: %v, want 429", err)
	}
	if _, err := e.write(as(b), "", topicSub(rcv.srv.URL+"/b", encTopic, "id-only")); err != nil {
		t.Errorf("bob's first subscription: %v", err)
	}
}

// TestNotificationOfASubscriptionIsRedacted: a full-resource notification
// whose focus is a Subscription carries it masked, on the rest-hook and
// through $events.
func TestNotificationOfASubscriptionIsRedacted(t *testing.T) {
	rcv := newReceiver(t)
	e := newEnv(t)
	const watchTopic = "https://example.org/SubscriptionTopic/subscription-watch"
	e.mustDo(201, "PUT", "/SubscriptionTopic/subscription-watch", map[string]any{
		"resourceType": "SubscriptionTopic", "id": "subscription-watch", "url": watchTopic, "status": "active",
		"resourceTrigger": []any{map[string]any{"resource": "Subscription", "supportedInteraction": []any{"create"}}},
	})
	watch := topicSub(rcv.srv.URL+"/watch", watchTopic, "full-resource")
	delete(watch["channel"].(map[string]any), "header")
	id := e.mustDo(201, "POST", "/Subscription", watch)["id"].(string)
	rcv.waitFor("the watcher's handshake", forSub(t, id, "handshake"))

	target := topicSub(rcv.srv.URL+"/target", watchTopic, "id-only")
	channelExt(target, subscriptions.ExtHMACSecret, "valueString", "HMAC-SECRET-VALUE")
	targetID := e.mustDo(201, "POST", "/Subscription", target)["id"].(string)

	got := rcv.waitFor("the notification of the new Subscription", forSub(t, id, "event-notification"))
	ev, err := e.m.EventsBundle(context.Background(), id, 0, 0, "full-resource")
	if err != nil {
		t.Fatal(err)
	}
	evRaw, _ := json.Marshal(ev)
	for name, raw := range map[string][]byte{"rest-hook": got.Body, "$events": evRaw} {
		if !bytes.Contains(raw, []byte(targetID)) || !bytes.Contains(raw, []byte(`Authorization: ***`)) {
			t.Errorf("%s does not carry the Subscription masked: %s", name, raw)
		}
		for _, secret := range []string{"SECRET-TOKEN", "HMAC-SECRET-VALUE", subscriptions.ExtAccess} {
			if bytes.Contains(raw, []byte(secret)) {
				t.Errorf("%s carries %q: %s", name, secret, raw)
			}
		}
	}
}

// TestSubscriptionQuotaInFlight: creates of one owner validated at the same
// time (none committed yet) cannot pass the cap together; once they
// register, the places they held are counted as subscriptions, not twice.
func TestSubscriptionQuotaInFlight(t *testing.T) {
	rcv := newReceiver(t)
	e := newEnv(t, func(c *subscriptions.Config) { c.MaxPerOwner = 3 })
	e.mustDo(201, "PUT", "/SubscriptionTopic/encounter-start", encounterTopic())
	a := accessOf(t, "alice", "pa", "patient/*.rs")
	h := e.m.SubscriptionInterceptor()
	var bodies []map[string]any
	refused := 0
	for range 20 {
		b := topicSub(rcv.srv.URL+"/a", encTopic, "id-only")
		switch err := h.Validate(as(a), b, nil); {
		case err == nil:
			bodies = append(bodies, b)
		case statusOf(err) == http.StatusTooManyRequests:
			refused++
		default:
			t.Fatalf("validate: %v", err)
		}
	}
	t.Logf("in flight: %d passed, %d refused", len(bodies), refused)
	if len(bodies) != 3 || refused != 17 {
		t.Fatalf("%d creates in flight passed the quota of 3 (%d refused)", len(bodies), refused)
	}
	for _, b := range bodies {
		res, err := e.db.Create(context.Background(), b)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.Committed(context.Background(), res, fhirstore.InteractionCreate); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.write(as(a), "", topicSub(rcv.srv.URL+"/a", encTopic, "id-only")); statusOf(err) != http.StatusTooManyRequests {
		t.Errorf("a fourth subscription after three registered: %v, want 429", err)
	}
}
