package channels_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/fhirsub/fhirsub/channels"
	"github.com/fhirsub/fhirsub/conformance/smart"
)

// fakeVerifier accepts the tokens of its map.
type fakeVerifier map[string]*smart.Access

func (f fakeVerifier) Verify(_ context.Context, raw string) (*smart.Access, error) {
	if a, ok := f[raw]; ok {
		return a, nil
	}
	return nil, errors.New("invalid token: invalid signature: details")
}

var _ channels.Verifier = fakeVerifier(nil)

func tokenAccess(t *testing.T, sub, patient, scopes string) *smart.Access {
	t.Helper()
	ss, err := smart.ParseScopes(scopes)
	if err != nil {
		t.Fatal(err)
	}
	return &smart.Access{Subject: sub, Patient: patient, Scopes: ss}
}

// expectClose reads until the connection closes and checks the code.
func expectClose(t *testing.T, ws *websocket.Conn, code int, reason string) []msg {
	t.Helper()
	var got []msg
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, data, err := ws.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != code || reason != "" && ce.Text != reason {
				t.Fatalf("closed with %v, want %d %q", err, code, reason)
			}
			return got
		}
		var m msg
		_ = json.Unmarshal(data, &m)
		m.raw = string(data)
		got = append(got, m)
	}
}

func TestLegacyAuthHandshake(t *testing.T) {
	checkGoroutines(t)
	v := fakeVerifier{
		"tok-a": tokenAccess(t, "alice", "pa", "patient/*.rs"),
	}
	ts := mustServe(t, channels.Config{}, channels.LegacyConfig{Verifier: v, AuthTimeout: 200 * time.Millisecond})

	t.Run("query token", func(t *testing.T) {
		ws := mustDial(t, ts.url+"?access_token=tok-a")
		subscribe(t, ws, "s", []string{"*"}, nil)
	})
	t.Run("bearer header", func(t *testing.T) {
		ws, _, err := websocket.DefaultDialer.Dial(ts.url, http.Header{"Authorization": {"Bearer tok-a"}})
		if err != nil {
			t.Fatal(err)
		}
		defer ws.Close()
		subscribe(t, ws, "s", []string{"*"}, nil)
	})
	for name, url := range map[string]string{
		"forged query token": ts.url + "?access_token=forged",
		"empty query token":  ts.url + "?access_token=",
	} {
		t.Run(name, func(t *testing.T) {
			_, resp, err := websocket.DefaultDialer.Dial(url, nil)
			if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("dial: %v %v, want 401", err, resp)
			}
		})
	}
	t.Run("basic scheme", func(t *testing.T) {
		_, resp, err := websocket.DefaultDialer.Dial(ts.url, http.Header{"Authorization": {"Basic eDp5"}})
		if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("dial: %v %v, want 401", err, resp)
		}
	})
	t.Run("auth message", func(t *testing.T) {
		ws := mustDial(t, ts.url)
		send(t, ws, `{"type":"auth","data":{"token":"tok-a"}}`)
		if m := recvType(t, ws, "authenticated"); m.Data["patient"] != "pa" {
			t.Errorf("authenticated: %s", m.raw)
		}
		subscribe(t, ws, "s", []string{"Observation"}, nil)
		send(t, ws, `{"type":"auth","data":{"token":"tok-a"}}`)
		recvType(t, ws, "error")
	})
	t.Run("subscribe before auth", func(t *testing.T) {
		ws := mustDial(t, ts.url)
		send(t, ws, `{"type":"subscribe","data":{"subscription_id":"s","resource_types":["*"]}}`)
		got := expectClose(t, ws, channels.ClosePolicyViolation, channels.ReasonAuthRequired)
		if len(got) != 1 || got[0].Data["code"] != channels.LegacyErrUnauthenticated {
			t.Errorf("frames before close: %v", got)
		}
	})
	t.Run("bad token in auth message", func(t *testing.T) {
		ws := mustDial(t, ts.url)
		send(t, ws, `{"type":"auth","data":{"token":"forged"}}`)
		got := expectClose(t, ws, channels.ClosePolicyViolation, channels.ReasonInvalidToken)
		if len(got) != 1 || got[0].Data["code"] != channels.LegacyErrInvalidToken || strings.Contains(got[0].raw, "details") {
			t.Errorf("frames before close: %v", got)
		}
	})
	t.Run("malformed auth message", func(t *testing.T) {
		ws := mustDial(t, ts.url)
		send(t, ws, `{"type":"auth","data":{}}`)
		expectClose(t, ws, channels.ClosePolicyViolation, channels.ReasonAuthRequired)
	})
	t.Run("no auth in time", func(t *testing.T) {
		ws := mustDial(t, ts.url)
		got := expectClose(t, ws, channels.ClosePolicyViolation, channels.ReasonAuthTimeout)
		if len(got) != 1 || got[0].Data["code"] != channels.LegacyErrUnauthenticated {
			t.Errorf("frames before close: %v", got)
		}
	})
}

func TestLegacyAuthExpiry(t *testing.T) {
	checkGoroutines(t)
	a := tokenAccess(t, "alice", "", "user/*.rs")
	a.Claims = map[string]any{"exp": float64(time.Now().Add(1500 * time.Millisecond).Unix())}
	ts := mustServe(t, channels.Config{}, channels.LegacyConfig{Verifier: fakeVerifier{"t": a}})
	ws := mustDial(t, ts.url+"?access_token=t")
	subscribe(t, ws, "s", []string{"*"}, nil)
	if got := expectClose(t, ws, channels.ClosePolicyViolation, channels.ReasonTokenExpired); len(got) != 0 {
		t.Errorf("frames before close: %v", got)
	}
}

func focusUpdate(t *testing.T, seq int64, action, typ, id string, patients []string, focus string) *channels.LegacyEvent {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(focus), &m); err != nil {
		t.Fatal(err)
	}
	u := channels.LegacyUpdate{Seq: seq, Action: action, ResourceType: typ, ResourceID: id, PatientIDs: patients, Focus: m}
	if action != channels.ActionDeleted {
		u.Resource = json.RawMessage(focus)
	}
	ev, err := channels.NewLegacyUpdate(u)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func TestLegacyAuthFiltering(t *testing.T) {
	checkGoroutines(t)
	const (
		obsA  = `{"resourceType":"Observation","id":"oa","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/pa"},"note":[{"text":"MARK-A"}]}`
		obsB  = `{"resourceType":"Observation","id":"ob","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/pb"},"note":[{"text":"MARK-B"}]}`
		condA = `{"resourceType":"Condition","id":"ca","subject":{"reference":"Patient/pa"}}`
		labA  = `{"resourceType":"Observation","id":"la","status":"final","code":{"text":"x"},"category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory"}]}],"subject":{"reference":"Patient/pa"}}`
		prac  = `{"resourceType":"Practitioner","id":"pr"}`
	)
	v := fakeVerifier{
		"a":       tokenAccess(t, "alice", "pa", "patient/*.rs"),
		"a-obs":   tokenAccess(t, "alice", "pa", "patient/Observation.rs"),
		"lab":     tokenAccess(t, "lab", "", "user/Observation.rs?category=laboratory"),
		"admin":   tokenAccess(t, "root", "", "system/*.rs"),
		"nothing": tokenAccess(t, "n", "", "openid"),
	}
	ts, log := serveWithLog(t, channels.Config{}, channels.LegacyConfig{Verifier: v})
	dial := func(tok string) *websocket.Conn { return mustDial(t, ts.url+"?access_token="+tok) }

	a := dial("a")
	send(t, a, `{"type":"subscribe","data":{"subscription_id":"x","resource_types":["*"],"patient_ids":["pb"]}}`)
	if m := recvType(t, a, "error"); m.Data["code"] != channels.LegacyErrForbidden {
		t.Errorf("patient B for token A: %s", m.raw)
	}
	subscribe(t, a, "s", []string{"*"}, []string{})
	aObs := dial("a-obs")
	send(t, aObs, `{"type":"subscribe","data":{"subscription_id":"x","resource_types":["Condition"]}}`)
	if m := recvType(t, aObs, "error"); m.Data["code"] != channels.LegacyErrForbidden {
		t.Errorf("unreadable type: %s", m.raw)
	}
	subscribe(t, aObs, "s", []string{"*"}, nil)
	lab := dial("lab")
	subscribe(t, lab, "s", []string{"*"}, nil)
	admin := dial("admin")
	subscribe(t, admin, "s", []string{"*"}, nil)
	nothing := dial("nothing")
	send(t, nothing, `{"type":"subscribe","data":{"subscription_id":"x","resource_types":["*"]}}`)
	if m := recvType(t, nothing, "error"); m.Data["code"] != channels.LegacyErrForbidden {
		t.Errorf("token without read scopes: %s", m.raw)
	}

	log.publish(1, focusUpdate(t, 1, channels.ActionCreated, "Observation", "oa", []string{"pa"}, obsA))
	log.publish(2, focusUpdate(t, 2, channels.ActionCreated, "Observation", "ob", []string{"pb"}, obsB))
	log.publish(3, focusUpdate(t, 3, channels.ActionCreated, "Condition", "ca", []string{"pa"}, condA))
	log.publish(4, focusUpdate(t, 4, channels.ActionCreated, "Observation", "la", []string{"pa"}, labA))
	log.publish(5, focusUpdate(t, 5, channels.ActionDeleted, "Observation", "la", []string{"pa"}, labA))
	log.publish(6, focusUpdate(t, 6, channels.ActionCreated, "Practitioner", "pr", nil, prac))
	log.publish(7, focusUpdate(t, 7, channels.ActionDeleted, "Observation", "ob", []string{"pb"}, obsB))
	ce, err := channels.NewLegacyClinicalEvent(channels.LegacyClinicalEvent{Seq: 8, EventType: "critical_result",
		ResourceType: "Observation", PatientIDs: []string{"pb"}, Details: map[string]any{"note": "MARK-B"}})
	if err != nil {
		t.Fatal(err)
	}
	log.publish(8, ce)
	// a deletion without its focus: judged by its patients
	log.publish(9, update(t, 9, channels.ActionDeleted, "Observation", "la", []string{"pa"}, ""))

	want := map[*websocket.Conn][]int64{
		a:     {1, 3, 4, 5, 9},
		aObs:  {1, 4, 5, 9},
		lab:   {4, 5}, // granular: needs the focus; seq 9 has none
		admin: {1, 2, 3, 4, 5, 6, 7, 8, 9},
	}
	for ws, seqs := range want {
		for _, seq := range seqs {
			m := recv(t, ws)
			if m.Seq == nil || *m.Seq != seq {
				t.Fatalf("got %s, want seq %d", m.raw, seq)
			}
			if ws != admin && strings.Contains(m.raw, "MARK-B") || strings.Contains(m.raw, `"pb"`) && ws != admin {
				t.Errorf("patient B's data reached a restricted connection: %s", m.raw)
			}
		}
		expectNothingQueued(t, ws)
	}
}

func TestLegacyAuthClientRecordOwner(t *testing.T) {
	checkGoroutines(t)
	v := fakeVerifier{
		"a": tokenAccess(t, "alice", "pa", "patient/*.rs"),
		"b": tokenAccess(t, "bob", "pb", "patient/*.rs"),
	}
	ts, _ := serveWithLog(t, channels.Config{}, channels.LegacyConfig{Verifier: v})
	ws := mustDial(t, ts.url+"?access_token=a&client_id=tab1")
	subscribe(t, ws, "mine", []string{"*"}, nil)
	_ = ws.Close()
	eventually(t, "session closed", func() bool { return ts.hub.Len() == 0 })

	other := mustDial(t, ts.url+"?access_token=b&client_id=tab1")
	expectNothingQueued(t, other) // no "subscribed … restored" for bob
	_ = other.Close()
	eventually(t, "session closed", func() bool { return ts.hub.Len() == 0 })

	again := mustDial(t, ts.url+"?access_token=a&client_id=tab1")
	if m := recvType(t, again, "subscribed"); m.Data["restored"] != true {
		t.Errorf("alice's record: %s", m.raw)
	}
}
