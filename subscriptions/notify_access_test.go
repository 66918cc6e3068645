package subscriptions_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fhirsub/fhirsub/channels"
	"github.com/fhirsub/fhirsub/conformance/smart"
	"github.com/fhirsub/fhirsub/subscriptions/wsbridge"
)

const resultAvailable = "https://fhirsub.org/SubscriptionTopic/result-available"

// eventsUntil polls $events as acc until the Bundle mentions want (the
// later marker event: once it is there, every earlier change has been
// matched).
func (e *env) eventsUntil(acc *smart.Access, id, want string) string {
	e.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		b, err := e.m.EventsBundle(as(acc), id, 0, 0, "")
		if err != nil {
			e.t.Fatalf("$events of Subscription/%s: %v", id, err)
		}
		raw, _ := json.Marshal(b)
		if strings.Contains(string(raw), want) {
			return string(raw)
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("$events of Subscription/%s never showed %s: %s", id, want, raw)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestNotificationIncludesFollowTheAccessDecision: a full-resource
// notification carries an included resource only when the subscription's
// owner (and, for $events, the caller) may read it, and leaves it out
// entirely otherwise — no entry, no additional-context.
func TestNotificationIncludesFollowTheAccessDecision(t *testing.T) {
	rcv := newReceiver(t)
	e := newEnv(t)
	a := accessOf(t, "alice", "pa", "patient/*.rs")
	aReports := accessOf(t, "alice", "pa", "patient/DiagnosticReport.rs patient/Patient.rs patient/Subscription.rs")
	admin := accessOf(t, "root", "", "system/*.rs")
	sub := func(acc *smart.Access) string {
		res, err := e.write(as(acc), "", topicSub(rcv.srv.URL+"/x", resultAvailable, "full-resource"))
		if err != nil {
			t.Fatal(err)
		}
		return res.ID
	}
	subA, subNarrow, subAdmin := sub(a), sub(aReports), sub(admin)

	mark := "MARK-B-include"
	obsB := observation("pb", "preliminary")
	obsB["note"] = []any{map[string]any{"text": mark}}
	obsBID := e.mustDo(201, "POST", "/Observation", obsB)["id"].(string)
	obsAID := e.mustDo(201, "POST", "/Observation", observation("pa", "preliminary"))["id"].(string)
	report := e.mustDo(201, "POST", "/DiagnosticReport", map[string]any{"resourceType": "DiagnosticReport", "status": "final",
		"code": map[string]any{"text": "panel"}, "subject": map[string]any{"reference": "Patient/pa"},
		"result": []any{map[string]any{"reference": "Observation/" + obsBID}, map[string]any{"reference": "Observation/" + obsAID}}})
	drID := report["id"].(string)

	hasEntry := func(raw, ref string) bool { return strings.Contains(raw, `"fullUrl":"`+e.url+"/"+ref+`"`) }
	hasContext := func(raw, ref string) bool {
		return strings.Contains(raw, `"name":"additional-context","valueReference":{"reference":"`+e.url+"/"+ref+`"}`)
	}
	cases := []struct {
		name      string
		caller    *smart.Access
		id        string
		shown     []string
		notShown  []string
		wantMarks bool
	}{
		{"patient A's subscription, read by A", a, subA, []string{"Observation/" + obsAID}, []string{"Observation/" + obsBID}, false},
		{"patient A's subscription, read by an admin", admin, subA, []string{"Observation/" + obsAID}, []string{"Observation/" + obsBID}, false},
		{"a subscription of A's reports only", aReports, subNarrow, nil, []string{"Observation/" + obsBID, "Observation/" + obsAID}, false},
		{"the admin's subscription, read by the admin", admin, subAdmin, []string{"Observation/" + obsBID, "Observation/" + obsAID}, nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			raw := e.eventsUntil(tc.caller, tc.id, "DiagnosticReport/"+drID)
			if !hasEntry(raw, "DiagnosticReport/"+drID) {
				t.Errorf("the focus is missing")
			}
			for _, r := range tc.shown {
				if !hasEntry(raw, r) || !hasContext(raw, r) {
					t.Errorf("%s: want an entry and an additional-context", r)
				}
			}
			for _, r := range tc.notShown {
				if hasEntry(raw, r) || hasContext(raw, r) {
					t.Errorf("%s is carried although not permitted", r)
				}
			}
			if strings.Contains(raw, mark) != tc.wantMarks {
				t.Errorf("B's marker carried: %v, want %v", !tc.wantMarks, tc.wantMarks)
			}
		})
	}
	// Delivered by rest-hook with the owner's access at send time.
	got := rcv.waitN("A's notification", 1, func(r received) bool {
		return strings.Contains(string(r.Body), "DiagnosticReport/"+drID) && strings.Contains(string(r.Body), subA)
	})
	if strings.Contains(string(got[0].Body), mark) || hasEntry(string(got[0].Body), "Observation/"+obsBID) {
		t.Errorf("B's Observation reached A's rest-hook: %s", got[0].Body)
	}
}

// TestBindingNeedsWhatEventsNeeds: $get-ws-binding-token and R4 bind
// follow the $events decision; a Subscription-only token binds nothing.
func TestBindingNeedsWhatEventsNeeds(t *testing.T) {
	e := newEnv(t)
	bt, err := channels.NewBindingTokens(channels.BindingTokensConfig{})
	if err != nil {
		t.Fatal(err)
	}
	br, err := wsbridge.New(wsbridge.Config{Pipeline: e.m, Tokens: bt, BaseURL: "http://127.0.0.1/fhir", HeartbeatTick: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = br.Shutdown(ctx)
	})
	a := accessOf(t, "alice", "pa", "patient/*.rs")
	b := accessOf(t, "bob", "pb", "patient/*.rs")
	subsOnly := accessOf(t, "robot", "", "user/Subscription.rs")
	admin := accessOf(t, "root", "", "system/*.rs")
	ws := func(acc *smart.Access) string {
		res, err := e.write(as(acc), "", map[string]any{"resourceType": "Subscription", "status": "requested", "reason": "r",
			"criteria": "Observation?code=http://loinc.org|2339-0", "channel": map[string]any{"type": "websocket"}})
		if err != nil {
			t.Fatal(err)
		}
		return res.ID
	}
	subA, subB, subAdmin := ws(a), ws(b), ws(admin)
	for _, tc := range []struct {
		who  string
		acc  *smart.Access
		id   string
		want bool
	}{
		{"A, own", a, subA, true}, {"A, B's", a, subB, false}, {"A, admin's", a, subAdmin, false},
		{"subscriptions-only, A's", subsOnly, subA, false}, {"subscriptions-only, admin's", subsOnly, subAdmin, false},
		{"admin, A's", admin, subA, true},
	} {
		_, events := e.m.EventsBundle(as(tc.acc), tc.id, 0, 0, "")
		_, tokErr := br.BindingToken(context.Background(), tc.acc, []string{tc.id})
		cancel, bindErr := br.BindR4(context.Background(), tc.id, tc.acc, func(int64) {}, func(string) {})
		if cancel != nil {
			cancel()
		}
		if (events == nil) != tc.want || (tokErr == nil) != tc.want || (bindErr == nil) != tc.want {
			t.Errorf("%s: $events %v, token %v, bind %v; want allowed=%v", tc.who, events, tokErr, bindErr, tc.want)
		}
		if !tc.want && statusOf(tokErr) != http.StatusForbidden {
			t.Errorf("%s: token refused with %v, want 403", tc.who, tokErr)
		}
	}
	tok, err := br.BindingToken(context.Background(), a, nil)
	if err != nil || !slices.Equal(tok.Subscriptions, []string{subA}) {
		t.Errorf("A's token without ids names %v (%v), want only %s", tok.Subscriptions, err, subA)
	}
	if _, err := br.BindingToken(context.Background(), subsOnly, nil); statusOf(err) != http.StatusNotFound {
		t.Errorf("subscriptions-only token without ids: %v, want 404 (none it may read)", err)
	}
}
