package subscriptions_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/fhirsub/fhirsub/conformance/smart"
	"github.com/fhirsub/fhirsub/fhirstore"
	"github.com/fhirsub/fhirsub/subscriptions"
)

func accessOf(t *testing.T, sub, patient, scopes string) *smart.Access {
	t.Helper()
	ss, err := smart.ParseScopes(scopes)
	if err != nil {
		t.Fatal(err)
	}
	return &smart.Access{Subject: sub, Patient: patient, Scopes: ss}
}

func as(a *smart.Access) context.Context { return smart.NewContext(context.Background(), a) }

// write runs a Subscription write the way web does: Validate, store,
// Committed.
func (e *env) write(ctx context.Context, id string, body map[string]any) (*fhirstore.Resource, error) {
	e.t.Helper()
	h := e.m.SubscriptionInterceptor()
	var cur *fhirstore.Resource
	if id != "" {
		c, err := e.db.Read(ctx, "Subscription", id)
		if err != nil {
			e.t.Fatal(err)
		}
		cur = c
	}
	if err := h.Validate(ctx, body, cur); err != nil {
		return nil, err
	}
	var res *fhirstore.Resource
	var err error
	in := fhirstore.InteractionCreate
	if id == "" {
		res, err = e.db.Create(ctx, body)
	} else {
		body["id"] = id
		res, _, err = e.db.Update(ctx, id, body, fhirstore.WriteOptions{})
		in = fhirstore.InteractionUpdate
	}
	if err != nil {
		e.t.Fatal(err)
	}
	if err := h.Committed(ctx, res, in); err != nil {
		e.t.Fatal(err)
	}
	return res, nil
}

func statusOf(err error) int {
	var se *subscriptions.Error
	if errors.As(err, &se) {
		return se.Status
	}
	return 0
}

func TestSubscriptionAccessOwnership(t *testing.T) {
	rcv := newReceiver(t)
	e := newEnv(t)
	e.mustDo(201, "PUT", "/SubscriptionTopic/encounter-start", encounterTopic())
	a := accessOf(t, "alice", "pa", "patient/*.rs")
	aNarrow := accessOf(t, "alice", "pa", "patient/Observation.rs")
	b := accessOf(t, "bob", "pb", "patient/*.rs")
	admin := accessOf(t, "root", "", "system/*.cruds")

	res, err := e.write(as(a), "", topicSub(rcv.srv.URL+"/a", encTopic, "id-only"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := fhirstore.Decode(res.Body)
	raw, found := smart.AccessOf(body)
	stamped, derr := smart.Decode([]byte(raw))
	if !found || derr != nil || stamped.Patient != "pa" || stamped.Subject != "alice" || stamped.Scopes.String() != "patient/*.rs" {
		t.Fatalf("stamped access %q (%v)", raw, derr)
	}
	s, _ := e.m.Subscription(res.ID)
	if s.Access.Patient != "pa" {
		t.Fatalf("parsed access %+v", s.Access)
	}

	forged := topicSub(rcv.srv.URL+"/f", encTopic, "id-only")
	forged["extension"] = []any{map[string]any{"url": subscriptions.ExtAccess, "valueString": `{"scope":"system/*.cruds"}`}}
	if _, err := e.write(as(b), "", forged); statusOf(err) != http.StatusUnprocessableEntity {
		t.Errorf("client-supplied access on create: %v", err)
	}
	if _, err := e.write(as(smart.Full()), "", forged); statusOf(err) != http.StatusUnprocessableEntity {
		t.Errorf("client-supplied access on create, auth off: %v", err)
	}

	upd := func(ctx context.Context, mutate func(map[string]any)) error {
		cur, _ := e.db.Read(context.Background(), "Subscription", res.ID)
		m, _ := fhirstore.Decode(cur.Body)
		mutate(m)
		_, err := e.write(ctx, res.ID, m)
		return err
	}
	if err := upd(as(b), func(m map[string]any) { m["reason"] = "hijack" }); statusOf(err) != http.StatusForbidden {
		t.Errorf("update by another patient: %v", err)
	}
	if err := upd(as(aNarrow), func(m map[string]any) { m["reason"] = "narrower" }); statusOf(err) != http.StatusForbidden {
		t.Errorf("update by a narrower token of the same patient: %v", err)
	}
	if err := upd(as(a), func(m map[string]any) {
		m["extension"] = []any{map[string]any{"url": subscriptions.ExtAccess, "valueString": `{"scope":"system/*.cruds"}`}}
	}); statusOf(err) != http.StatusUnprocessableEntity {
		t.Errorf("owner widening the access: %v", err)
	}
	if err := upd(as(a), func(m map[string]any) { m["reason"] = "sent back" }); err != nil {
		t.Errorf("owner read-modify-write: %v", err)
	}
	if err := upd(as(admin), func(m map[string]any) { delete(m, "extension"); m["reason"] = "admin" }); err != nil {
		t.Errorf("admin update: %v", err)
	}
	if s, _ := e.m.Subscription(res.ID); s.Access.Patient != "pa" || s.Access.Subject != "alice" {
		t.Errorf("access after updates %+v, want alice's kept", s.Access)
	}
	hook := e.m.SubscriptionInterceptor()
	if err := hook.ValidateDelete(as(b), res.ID); statusOf(err) != http.StatusForbidden {
		t.Errorf("delete by another patient: %v", err)
	}
	if err := hook.ValidateDelete(as(a), res.ID); err != nil {
		t.Errorf("delete by the owner: %v", err)
	}
	if _, err := e.write(as(aNarrow), "", topicSub(rcv.srv.URL+"/x", encTopic, "id-only")); statusOf(err) != http.StatusForbidden {
		t.Errorf("topic on types the token cannot read: %v", err)
	}

	if _, err := e.m.CheckAccess(as(b), res.ID); statusOf(err) != http.StatusForbidden {
		t.Errorf("CheckAccess by another patient: %v", err)
	}
	if _, err := e.m.StatusBundle(as(b), []string{res.ID}, nil, "x"); statusOf(err) != http.StatusForbidden {
		t.Errorf("$status by another patient: %v", err)
	}
	if _, err := e.m.EventsBundle(as(b), res.ID, 0, 0, ""); statusOf(err) != http.StatusForbidden {
		t.Errorf("$events by another patient: %v", err)
	}
	all, err := e.m.StatusBundle(as(b), nil, nil, "x")
	if err != nil || all["total"] != 0 {
		t.Errorf("type-level $status by another patient: %v %v", all["total"], err)
	}
	mine, err := e.m.StatusBundle(as(a), nil, nil, "x")
	if err != nil || mine["total"] != 1 {
		t.Errorf("type-level $status by the owner: %v %v", mine["total"], err)
	}
}

func TestSubscriptionAccessFiltersNotifications(t *testing.T) {
	rcv := newReceiver(t)
	e := newEnv(t)
	e.mustDo(201, "PUT", "/SubscriptionTopic/encounter-start", encounterTopic())
	a := accessOf(t, "alice", "pa", "patient/*.rs")
	res, err := e.write(as(a), "", topicSub(rcv.srv.URL+"/a", encTopic, "full-resource"))
	if err != nil {
		t.Fatal(err)
	}
	full := e.mustDo(201, "POST", "/Subscription", topicSub(rcv.srv.URL+"/full", encTopic, "id-only"))["id"].(string)
	classic := e.mustDo(201, "POST", "/Subscription", map[string]any{"resourceType": "Subscription", "status": "requested",
		"reason": "r", "criteria": "Encounter?status=planned", "channel": map[string]any{"type": "rest-hook", "endpoint": rcv.srv.URL + "/classic"}})["id"].(string)
	e.waitStatus(res.ID, "active")
	e.waitStatus(full, "active")
	e.waitStatus(classic, "active")

	enc := func(patient, mark string) map[string]any {
		m := encounter(patient)
		m["status"] = "planned"
		m["serviceType"] = map[string]any{"text": mark}
		return m
	}
	bID := e.mustDo(201, "POST", "/Encounter", enc("pb", "MARK-B-1"))["id"].(string)
	aID := e.mustDo(201, "POST", "/Encounter", enc("pa", "MARK-A-1"))["id"].(string)
	e.mustDo(201, "POST", "/Encounter", enc("pb", "MARK-B-2"))
	e.mustDo(200, "DELETE", "/Encounter/"+bID, nil) // a deletion is judged by the version deleted
	e.mustDo(200, "DELETE", "/Encounter/"+aID, nil)

	// A marker, a later encounter of alice's, proves there is nothing
	// more: each subscription is delivered in event order, so every
	// earlier event of hers went out before it, and the events of every
	// change up to it are recorded for all three subscriptions.
	marker := e.mustDo(201, "POST", "/Encounter", enc("pa", "MARKER-A"))["id"].(string)
	rcv.waitFor("alice's marker", func(r received) bool { return r.Path == "/a" && strings.Contains(string(r.Body), "MARKER-A") })
	rcv.waitFor("the unrestricted marker", func(r received) bool { return r.Path == "/full" && strings.Contains(string(r.Body), marker) })
	// events, not notifications: events that waited share one
	// (DefaultMaxCount)
	events := func(path string) int {
		n := 0
		for _, r := range rcv.matching(func(r received) bool { return r.Path == path && kindOf(t, r) == "event-notification" }) {
			n += len(eventNumbers(t, r.JSON))
		}
		return n
	}
	if n := events("/a"); n != 3 {
		t.Errorf("alice's subscription got %d events, want 3 (create and delete of her encounter, the marker)", n)
	}
	if n := events("/full"); n != 6 {
		t.Errorf("the unrestricted subscription got %d events, want 6 (3 creates, 2 deletes, the marker)", n)
	}
	st, err := e.m.State(context.Background(), classic)
	if err != nil || st.EventCount != 4 {
		t.Errorf("the classic subscription has %d events (%v), want 4 creates with the marker", st.EventCount, err)
	}
	rcv.waitN("classic notifications with the marker's", 4, func(r received) bool { return r.Path == "/classic" })
	for _, r := range rcv.matching(func(r received) bool { return r.Path == "/a" }) {
		if strings.Contains(string(r.Body), "MARK-B") || strings.Contains(string(r.Body), "Patient/pb") || strings.Contains(string(r.Body), bID) {
			t.Errorf("patient B's data reached alice's endpoint: %s", r.Body)
		}
	}
	ev, err := e.m.EventsBundle(as(a), res.ID, 0, 0, "")
	if err != nil || len(eventNumbers(t, ev)) != 3 {
		t.Errorf("$events for alice: %v %v", eventNumbers(t, ev), err)
	}
	// The unrestricted subscription's events, asked by alice: she may not
	// see that subscription at all.
	if _, err := e.m.EventsBundle(as(a), full, 0, 0, ""); statusOf(err) != http.StatusForbidden {
		t.Errorf("$events of an unrestricted subscription by alice: %v", err)
	}
	// A token narrower in types does not cover the unrestricted
	// subscription; a reading admin does and gets every event.
	encOnly := accessOf(t, "root", "", "system/Encounter.rs system/Subscription.rs")
	if _, err := e.m.EventsBundle(as(encOnly), full, 0, 0, ""); statusOf(err) != http.StatusForbidden {
		t.Errorf("$events by a token narrower than the subscription's: %v", err)
	}
	ev, err = e.m.EventsBundle(as(accessOf(t, "root", "", "system/*.rs")), full, 0, 0, "")
	if err != nil || len(eventNumbers(t, ev)) != 6 {
		t.Errorf("$events by a reading admin: %v %v", eventNumbers(t, ev), err)
	}
	if n := len(rcv.matching(func(r received) bool { return r.Path == "/classic" })); n != 4 {
		t.Errorf("classic unrestricted subscription got %d notifications, want 4 creates with the marker", n)
	}
}
