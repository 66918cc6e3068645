package main

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestMedGenEMRProtocolThroughTheBinary speaks the original MedGenEMR
// websocket protocol, frame by frame, to the built fhirsub binary on
// /api/ws and /api/ws/{client_id}: welcome, subscribe before and after
// the welcome, acks, filters (types, patients, empty lists, missing lists,
// "*"), created/updated/deleted updates, clinical events as updates, the
// JSON heartbeat, pong and unknown messages ignored, unsubscribe.
func TestMedGenEMRProtocolThroughTheBinary(t *testing.T) {
	p := startServerProc(t, "--legacy-heartbeat", "300ms")
	wsBase := "ws" + strings.TrimPrefix(p.base, "http") + "/api/ws"

	// Subscribed before the welcome arrived: the subscribe is answered
	// after the welcome.
	obs := dialOriginal(t, wsBase)
	obs.subscribe("sub_obs", []string{"Observation"}, []string{"p1"})
	id, user := obs.welcome(false)
	if user != nil {
		t.Errorf("welcome user without authentication: %v, want null", user)
	}
	ack := obs.ack("created", "sub_obs")
	if fmt.Sprint(ack.Data["resource_types"]) != "[Observation]" || fmt.Sprint(ack.Data["patient_ids"]) != "[p1]" {
		t.Errorf("ack does not echo the filters: %s", ack.Text)
	}

	// Reconnecting under a known client id.
	again := dialOriginal(t, wsBase+"/"+id)
	if got, _ := again.welcome(true); got != id {
		t.Errorf("welcome on /api/ws/%s: client_id %s", id, got)
	}
	// Subscribed after the welcome; every way to say "all".
	all := map[string]*origClient{}
	for name, lists := range map[string][2][]string{
		"empty":   {{}, {}},
		"missing": {nil, nil},
		"star":    {{"*"}, {"*"}},
	} {
		c := dialOriginal(t, wsBase)
		c.welcome(false)
		c.subscribe("sub_"+name, lists[0], lists[1])
		ack := c.ack("created", "sub_"+name)
		if _, ok := ack.Data["resource_types"].([]any); !ok {
			t.Errorf("%s: ack resource_types is not a list: %s", name, ack.Text)
		}
		all[name] = c
	}
	again.subscribe("sub_cond", []string{"Condition"}, nil)
	again.ack("created", "sub_cond")

	// created, with a clinical event (critical potassium)
	crit := mustFHIR(t, 201, "POST", p.base+"/Observation", criticalObservation("p1", "2823-3", "crit-1"))
	critID := crit["id"].(string)
	m := obs.updateOf("created", critID)
	if m.Data["patient_id"] != "p1" || m.Data["resource_type"] != "Observation" {
		t.Errorf("created update: %s", m.Text)
	}
	if res, _ := m.Data["resource"].(map[string]any); res["id"] != critID {
		t.Errorf("created update without the resource: %s", m.Text)
	}
	ce := obs.update()
	res, _ := ce.Data["resource"].(map[string]any)
	details, _ := res["details"].(map[string]any)
	if ce.Data["action"] != "clinical_event" || res["event_type"] != "critical_result" || details == nil ||
		ce.Data["resource_type"] != "Observation" || ce.Data["resource_id"] != critID || ce.Data["patient_id"] != "p1" {
		t.Errorf("clinical event: %s", ce.Text)
	}
	// updated, then deleted: a deletion names neither resource nor patient.
	crit["status"] = "amended"
	mustFHIR(t, 200, "PUT", p.base+"/Observation/"+critID, crit)
	if m := obs.updateOf("updated", critID); m.Data["patient_id"] != "p1" {
		t.Errorf("updated update: %s", m.Text)
	}
	mustFHIR(t, 200, "DELETE", p.base+"/Observation/"+critID, nil)
	del := obs.updateOf("deleted", critID)
	if v, ok := del.Data["resource"]; !ok || v != nil {
		t.Errorf("deletion resource: %s, want null", del.Text)
	}
	if v, ok := del.Data["patient_id"]; !ok || v != nil {
		t.Errorf("deletion patient_id: %s, want null", del.Text)
	}
	// Another patient's and another type's writes do not reach sub_obs:
	// the next message is the marker written after them.
	cond := mustFHIR(t, 201, "POST", p.base+"/Condition", map[string]any{"resourceType": "Condition",
		"subject": map[string]any{"reference": "Patient/p2"}})["id"].(string)
	mustFHIR(t, 201, "POST", p.base+"/Observation", observation("p2", "other"))
	marker := mustFHIR(t, 201, "POST", p.base+"/Observation", observation("p1", "marker"))["id"].(string)
	if m := obs.plainUpdate(); m.Data["resource_id"] != marker {
		t.Errorf("after the marker write, sub_obs got %s, want the marker %s", m.Text, marker)
	}
	if m := again.plainUpdate(); m.Data["resource_id"] != cond || m.Data["action"] != "created" {
		t.Errorf("sub_cond got %s, want Condition %s", m.Text, cond)
	}
	// "All" subscriptions see every write, in order (and the clinical
	// events between them).
	for name, c := range all {
		var got []string
		clinical := 0
		for len(got) < 6 {
			m := c.update()
			if m.Data["action"] == "clinical_event" {
				clinical++
				continue
			}
			got = append(got, fmt.Sprint(m.Data["action"], " ", m.Data["resource_type"]))
		}
		want := "[created Observation updated Observation deleted Observation created Condition created Observation created Observation]"
		if fmt.Sprint(got) != want || clinical == 0 {
			t.Errorf("%s: %v and %d clinical events, want %s and at least one", name, got, clinical, want)
		}
	}

	// Heartbeat: the server's JSON ping, the client's pong, an unknown
	// message: no error frame; the next message after them is the next
	// write's update.
	var ping origMsg
	for ping.Type != "ping" {
		var err error
		if ping, err = obs.read(15 * time.Second); err != nil || ping.Type != "ping" && ping.Data["action"] != "clinical_event" {
			t.Fatalf("want a heartbeat ping within 15s (interval 300ms), got %s %v", ping.Text, err)
		}
	}
	obs.checkPing(ping)
	obs.send(`{"type":"pong"}`)
	obs.send(`{"type":"no_such_type","data":{"x":1}}`)
	obs.send(`{"type":"pong","data":null}`)
	marker2 := mustFHIR(t, 201, "POST", p.base+"/Observation", observation("p1", "marker-2"))["id"].(string)
	if m := obs.plainUpdate(); m.Data["resource_id"] != marker2 {
		t.Errorf("after pong and an unknown message: %s, want the update of %s", m.Text, marker2)
	}

	// unsubscribe, of a known id and of an unknown one
	obs.send(`{"type":"unsubscribe","data":{"subscription_id":"sub_obs"}}`)
	if m := obs.ack("removed", "sub_obs"); len(m.Data) != 2 {
		t.Errorf("removed ack: %s", m.Text)
	}
	obs.send(`{"type":"unsubscribe","data":{"subscription_id":"never"}}`)
	obs.ack("removed", "never")
}

// TestMedGenEMRResubscribeChurnIsFree re-sends an identical subscribe in
// a burst (the original hooks do it on every render) while 100 writes
// arrive: every subscribe is acknowledged, every write's created update
// arrives once, in order, and no error frame is sent.
func TestMedGenEMRResubscribeChurnIsFree(t *testing.T) {
	p := startServerProc(t)
	c := dialOriginal(t, "ws"+strings.TrimPrefix(p.base, "http")+"/api/ws")
	c.welcome(false)
	c.subscribe("sub_churn", []string{"Observation"}, []string{"churn"})
	c.ack("created", "sub_churn")

	const writes, resubscribes = 100, 150
	ids := make(chan string, writes)
	go func() {
		defer close(ids)
		for i := range writes {
			code, res, err := fhirDo(t.Context(), "POST", p.base+"/Observation", observation("churn", fmt.Sprint("w", i)))
			if err != nil || code != 201 {
				t.Errorf("write %d: %d %v", i, code, err)
				return
			}
			ids <- res["id"].(string)
		}
	}()
	for range resubscribes {
		c.subscribe("sub_churn", []string{"Observation"}, []string{"churn"})
	}
	acks, updates, errorsSeen := 0, 0, 0
	var got []string
	for acks < resubscribes || updates < writes {
		m, err := c.read(20 * time.Second)
		if err != nil {
			t.Fatalf("after %d acks and %d updates: %v", acks, updates, err)
		}
		switch m.Type {
		case "subscription":
			acks++
		case "update":
			if m.Data["action"] == "created" {
				updates++
				got = append(got, fmt.Sprint(m.Data["resource_id"]))
			}
		case "error":
			errorsSeen++
			t.Logf("error frame: %s", m.Text)
		}
	}
	var want []string
	for id := range ids {
		want = append(want, id)
	}
	t.Logf("re-subscribe churn: %d subscribes acknowledged of %d, %d updates received of %d written, %d error frames",
		acks, resubscribes, updates, len(want), errorsSeen)
	if errorsSeen != 0 || acks != resubscribes {
		t.Errorf("churn: %d error frames, %d acks; want 0 and %d", errorsSeen, acks, resubscribes)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("updates out of order or missing:\n got %v\nwant %v", got, want)
	}
}

// TestMedGenEMRRenderChurnLosesNothing answers every update as the
// original hooks do when it re-renders them: unsubscribe the held
// subscription_id and subscribe the same filter under a new one. 100
// writes arrive meanwhile: each once, in order, before the marker written
// after them, and no error frame.
func TestMedGenEMRRenderChurnLosesNothing(t *testing.T) {
	p := startServerProc(t)
	c := dialOriginal(t, "ws"+strings.TrimPrefix(p.base, "http")+"/api/ws")
	c.welcome(false)
	held, renders := "sub_render_0", 0
	c.subscribe(held, []string{"Observation"}, []string{"render"})
	c.ack("created", held)

	// 100 writes, then a marker; the client reads until the marker.
	const writes = 100
	ids := make(chan string, writes)
	go func() {
		defer close(ids)
		for i := range writes + 1 {
			tag := fmt.Sprint("w", i)
			if i == writes {
				tag = "marker"
			}
			code, res, err := fhirDo(t.Context(), "POST", p.base+"/Observation", observation("render", tag))
			if err != nil || code != 201 {
				t.Errorf("write %d: %d %v", i, code, err)
				return
			}
			if i < writes {
				ids <- res["id"].(string)
			}
		}
	}()
	var got []string
	errorsSeen := 0
	for {
		m, err := c.read(20 * time.Second)
		if err != nil {
			t.Fatalf("after %d updates: %v", len(got), err)
		}
		if m.Type == "error" {
			errorsSeen++
			t.Logf("error frame: %s", m.Text)
		}
		if m.Type != "update" || m.Data["action"] != "created" {
			continue
		}
		if strings.Contains(m.Text, `"value":"marker"`) {
			break
		}
		got = append(got, fmt.Sprint(m.Data["resource_id"]))
		renders++
		c.send(`{"type":"unsubscribe","data":{"subscription_id":"` + held + `"}}`)
		held = fmt.Sprint("sub_render_", renders)
		c.subscribe(held, []string{"Observation"}, []string{"render"})
	}
	var want []string
	for id := range ids {
		want = append(want, id)
	}
	t.Logf("render churn: %d renders (2 messages each), %d updates received of %d written, %d error frames",
		renders, len(got), len(want), errorsSeen)
	if errorsSeen != 0 || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%d error frames; updates\n got %v\nwant %v", errorsSeen, got, want)
	}
}

// TestMedGenEMRReconnectReplaysWhatWasMissed disconnects the original
// client (a new connection to /api/ws, hence a new client id, as the
// original client reconnects), writes while it is away, and re-subscribes
// the same subscription_id: the ack, then every missed update in order,
// then live ones, with no duplicate. Then the same across a graceful
// restart of the server on the same SQLite file, with the writes made
// after the restart but before the client is back.
func TestMedGenEMRReconnectReplaysWhatWasMissed(t *testing.T) {
	p := startServerProc(t)
	wsURL := "ws" + strings.TrimPrefix(p.base, "http") + "/api/ws"
	write := func(tag string) string {
		t.Helper()
		return mustFHIR(t, 201, "POST", p.base+"/Observation", observation("p-re", tag))["id"].(string)
	}
	// connect subscribes "sub_all" and "sub_re" (which overlap: the
	// replay must not send anything twice), as the original client does on
	// welcome, and returns the ids of the updates received until both
	// acks are in.
	connect := func() (*origClient, []string) {
		t.Helper()
		c := dialOriginal(t, wsURL)
		c.welcome(false)
		c.subscribe("sub_all", nil, []string{"p-re"})
		c.subscribe("sub_re", []string{"Observation"}, []string{"p-re"})
		var early []string
		for acks := 0; acks < 2; {
			m := c.next()
			switch {
			case m.Type == "subscription" && m.Data["action"] == "created":
				acks++
			case m.Type == "update" && m.Data["action"] != "clinical_event":
				early = append(early, fmt.Sprint(m.Data["resource_id"]))
			case m.Type != "update":
				t.Fatalf("unexpected %s", m.Text)
			}
		}
		return c, early
	}
	// receive reads the created updates of want, in order, then proves with
	// a live marker write that nothing else (no duplicate) was queued.
	total := 0
	receive := func(c *origClient, early []string, round string, want []string) {
		t.Helper()
		marker := write(round + "-marker")
		got := early
		for {
			m := c.plainUpdate()
			id := fmt.Sprint(m.Data["resource_id"])
			if id == marker {
				break
			}
			got = append(got, id)
		}
		t.Logf("%s: %d updates replayed of %d missed, then the live marker", round, len(got), len(want))
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("%s: replayed %v, want %v", round, got, want)
		}
		total += len(got)
	}

	c, early := connect()
	seen := write("seen")
	if m := c.plainUpdate(); m.Data["resource_id"] != seen || len(early) > 0 {
		t.Fatalf("live update: %s (before it: %v)", m.Text, early)
	}
	receive(c, nil, "connected", nil)
	_ = c.c.Close()
	waitNoSockets(t, p.base)

	var missed []string
	for i := range 5 {
		missed = append(missed, write(fmt.Sprint("away-", i)))
	}
	c, early = connect()
	receive(c, early, "reconnect", missed)

	// Across a restart: the server stops (the socket gets its close),
	// writes land after the restart, then the client comes back.
	p.stop()
	for {
		m, err := c.read(15 * time.Second)
		if err != nil {
			break
		}
		if m.Type != "ping" && m.Data["action"] != "clinical_event" {
			t.Fatalf("before the close: %s", m.Text)
		}
	}
	p.start()
	missed = missed[:0]
	for i := range 120 {
		missed = append(missed, write(fmt.Sprint("restart-", i)))
	}
	c, early = connect()
	receive(c, early, "restart", missed)
	if total != 125 {
		t.Errorf("replayed %d missed updates in all, want 125", total)
	}
}

// TestMedGenEMRBadInput sends the original endpoints what they must refuse
// clearly: every answer is an HTTP status, an error message or a close
// code, and the server keeps serving.
func TestMedGenEMRBadInput(t *testing.T) {
	p := startServerProc(t)
	wsURL := "ws" + strings.TrimPrefix(p.base, "http") + "/api/ws"
	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/api/ws", http.StatusUpgradeRequired},
		{"GET", "/api/ws/some-client", http.StatusUpgradeRequired},
		{"POST", "/api/ws", http.StatusMethodNotAllowed},
	} {
		req, _ := http.NewRequest(tc.method, p.base+tc.path, strings.NewReader("{}"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, resp.StatusCode, tc.status)
		}
	}
	for path, status := range map[string]int{
		"/a/b":                         http.StatusNotFound,
		"/" + strings.Repeat("c", 200): http.StatusBadRequest,
	} {
		_, resp, err := websocket.DefaultDialer.Dial(wsURL+path, nil)
		if err == nil || resp == nil || resp.StatusCode != status {
			t.Errorf("dial /api/ws%s: %v %v, want %d", path, err, resp, status)
		}
	}
	c := dialOriginal(t, wsURL)
	c.welcome(false)
	for in, code := range map[string]string{
		`{"type":"subscribe","data":{`: "invalid_json",
		`{"type":"subscribe","data":{"subscription_id":"s","resource_types":["../etc"]}}`:    "invalid_field",
		`{"type":"subscribe","data":{"subscription_id":"s","patient_ids":["a b"]}}`:          "invalid_field",
		`{"type":"subscribe","data":{"resource_types":["Observation"]}}`:                     "missing_field",
		`{"type":"subscribe","data":{"subscription_id":"s","resource_types":"Observation"}}`: "invalid_field",
	} {
		c.send(in)
		m, err := c.read(10 * time.Second)
		if err != nil || m.Type != "error" || m.Data["code"] != code || m.Data["message"] == "" {
			t.Errorf("%s: %s %v, want error %s", in, m.Text, err, code)
		}
	}
	// Still serving: a valid subscribe is acknowledged.
	c.subscribe("ok", nil, nil)
	c.ack("created", "ok")
	// A frame over the read limit closes with 1009. The server closes as
	// soon as it reads the frame's length, so the client reads while it
	// writes (the write itself may then fail).
	closed := make(chan error, 1)
	go func() {
		for {
			if _, _, err := c.c.ReadMessage(); err != nil {
				closed <- err
				return
			}
		}
	}()
	_ = c.c.SetReadDeadline(time.Now().Add(15 * time.Second))
	_ = c.c.WriteMessage(websocket.TextMessage, []byte(`{"type":"subscribe","data":{"subscription_id":"`+strings.Repeat("x", 80<<10)+`"}}`))
	var ce *websocket.CloseError
	if err := <-closed; !errors.As(err, &ce) || ce.Code != websocket.CloseMessageTooBig {
		t.Errorf("oversized frame: the connection ended with %v, want close 1009", err)
	}
}
