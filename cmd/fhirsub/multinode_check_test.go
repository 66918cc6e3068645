package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// The checks of TestSeveralNodes.

// checkLegacyAcrossNodes connects a legacy websocket client to node a and
// waits for the update of a Patient created through node b.
func checkLegacyAcrossNodes(t *testing.T, a, b string) {
	t.Helper()
	url := "ws" + strings.TrimPrefix(a, "http") + "/ws?client_id=multinode"
	c, resp, err := websocket.DefaultDialer.Dial(url, http.Header{"Origin": {a}})
	if err != nil {
		t.Fatalf("dial %s: %v (%v)", url, err, resp)
	}
	defer c.Close()
	sub := `{"type":"subscribe","data":{"subscription_id":"s","resource_types":["*"],"patient_ids":[]}}`
	if err := c.WriteMessage(websocket.TextMessage, []byte(sub)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	read := func() map[string]any {
		_ = c.SetReadDeadline(deadline)
		_, raw, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("legacy client on %s: read: %v", a, err)
		}
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("legacy frame %s: %v", raw, err)
		}
		return m
	}
	if m := read(); m["type"] != "subscribed" {
		t.Fatalf("legacy client: want subscribed, got %v", m)
	}
	p := mustFHIR(t, http.StatusCreated, "POST", b+"/Patient",
		map[string]any{"resourceType": "Patient", "name": []any{map[string]any{"family": "Websocket"}}})
	id, _ := p["id"].(string)
	wrote := time.Now()
	for {
		m := read()
		data, _ := m["data"].(map[string]any)
		if m["type"] == "update" && data["resource_type"] == "Patient" && data["resource_id"] == id {
			if data["action"] != "created" {
				t.Errorf("legacy update of Patient/%s: action %v, want created", id, data["action"])
			}
			t.Logf("legacy client on %s got the write made through %s after %v", a, b, time.Since(wrote).Round(time.Millisecond))
			return
		}
	}
}

// expectedEvents lists, per subscription, the stored Observations that
// must notify it (answers lost in the kill are reconciled with the store:
// a write counts if it was committed), and how many are stored.
func expectedEvents(t *testing.T, base string, subs []crashSub) (map[string][]string, int) {
	t.Helper()
	byPatient := map[string][]string{}
	stored := searchAll(t, base+"/Observation?_count=1000")
	for _, obs := range stored {
		subj, _ := obs["subject"].(map[string]any)
		ref, _ := subj["reference"].(string)
		id, _ := obs["id"].(string)
		p := strings.TrimPrefix(ref, "Patient/")
		byPatient[p] = append(byPatient[p], id)
	}
	out := map[string][]string{}
	for _, s := range subs {
		out[s.id] = byPatient[s.patient]
		slices.Sort(out[s.id])
	}
	return out, len(stored)
}

// drain waits until every subscription has received as many distinct
// events as it expects. The caller wrote markers last (writeMarkers), so
// each subscription's last events are markers: delivery goes in event
// order, so once they arrived nothing earlier can still come, and no
// pause is needed to prove it.
func drain(t *testing.T, rcv *hookReceiver, subs []crashSub, want map[string][]string, limit time.Duration) {
	t.Helper()
	ok := rcv.waitUntil(limit, func() bool {
		for _, s := range subs {
			if len(rcv.snapshot(s.id).deliveries) < len(want[s.id]) {
				return false
			}
		}
		return true
	})
	if !ok {
		t.Errorf("deliveries did not drain within %v", limit)
	}
}

// ackedWrites are the Observations the client got a 201 for, with their
// patient.
type ackedWrites struct {
	mu   sync.Mutex
	byID map[string]string
}

func (a *ackedWrites) add(id, patient string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.byID[id] = patient
}

func (a *ackedWrites) len() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.byID)
}

// forPatient returns the acknowledged writes of one patient.
func (a *ackedWrites) forPatient(p string) []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for id, pat := range a.byID {
		if pat == p {
			out = append(out, id)
		}
	}
	return out
}

// multiTally is what the receiver got, against what the client was told.
type multiTally struct {
	expected   int // events of acknowledged writes
	delivered  int // distinct event numbers received
	lost       int // acknowledged writes whose event never arrived
	duplicates int // receptions beyond the first
	atKill     int // duplicates of a subscription of the killed node first received before the kill
	unacked    int // events received for stored writes whose answer the client never got
	lostWhat   []string
	duplicated map[string][]int // subscription → event numbers received more than once
	problems   []string         // numbering or focus defects, reported after the figures
}

// tallyAcked counts, per subscription, the acknowledged matching writes
// whose event arrived (by focus), the lost ones, and the receptions beyond
// the first; a duplicate counts as atKill when its subscription belonged
// to the killed node (orphans) and its first reception came before the
// kill. The numbering must be exactly 1..N, N the stored matching writes.
func tallyAcked(t *testing.T, rcv *hookReceiver, subs []crashSub, stored map[string][]string, ack *ackedWrites,
	orphans map[string]bool, killed time.Time) multiTally {
	t.Helper()
	out := multiTally{duplicated: map[string][]int{}}
	for _, s := range subs {
		got := rcv.snapshot(s.id)
		foci := map[string]bool{}
		for num, times := range got.deliveries {
			out.delivered++
			foci[got.focus[num][strings.LastIndex(got.focus[num], "/")+1:]] = true
			if times > 1 {
				out.duplicates += times - 1
				out.duplicated[s.id] = append(out.duplicated[s.id], num)
				if orphans[s.id] && len(got.times[num]) > 0 && got.times[num][0].Before(killed) {
					out.atKill += times - 1
				}
			}
		}
		acked := ack.forPatient(s.patient)
		out.expected += len(acked)
		isAcked := map[string]bool{}
		for _, id := range acked {
			isAcked[id] = true
			if !foci[id] {
				out.lost++
				out.lostWhat = append(out.lostWhat, "Subscription/"+s.id+" Observation/"+id)
			}
		}
		for id := range foci {
			if !isAcked[id] {
				out.unacked++
			}
		}
		if !contiguous(got.deliveries, len(stored[s.id])) {
			out.problems = append(out.problems, fmt.Sprintf("Subscription/%s: event numbers %v, want 1..%d (the stored matching writes)",
				s.id, sortedKeys(got.deliveries), len(stored[s.id])))
		}
		checkFoci(t, s.id, got.focus, stored[s.id])
	}
	return out
}

// watchTakeover measures how long after the kill every subscription of
// the killed node's partitions receives a new event (from its new owner):
// it sends that duration, or 0 if some did not within limit.
func watchTakeover(rcv *hookReceiver, orphans map[string]bool, before map[string]int, killed time.Time, limit time.Duration) <-chan time.Duration {
	out := make(chan time.Duration, 1)
	go func() {
		var last time.Duration
		seen := map[string]bool{}
		for time.Since(killed) < limit {
			for id := range orphans {
				if !seen[id] && len(rcv.snapshot(id).deliveries) > before[id] {
					seen[id] = true
					last = time.Since(killed)
				}
			}
			if len(seen) == len(orphans) {
				out <- last
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		out <- 0
	}()
	return out
}

// sameExpectation reports whether two expectations list the same events.
func sameExpectation(a, b map[string][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for id, evs := range a {
		if !slices.Equal(evs, b[id]) {
			return false
		}
	}
	return true
}

// postPolitely POSTs body like a well-behaved client: a 503 or 429 with
// Retry-After (the server's backpressure, e.g. while a node that took
// over a dead node's partitions catches up) is waited out and the write
// sent again, for up to a minute. It fails the test unless the answer is
// 201, and returns the created resource.
func postPolitely(t *testing.T, url string, body any) map[string]any {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		resp, out, err := fhirDoResp(url, body)
		if err != nil {
			t.Fatalf("POST %s: %v", url, err)
		}
		after, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		if (resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusTooManyRequests) &&
			after > 0 && time.Now().Before(deadline) {
			t.Logf("POST %s: %d, retrying after %ds as the server asked", url, resp.StatusCode, after)
			time.Sleep(time.Duration(after) * time.Second)
			continue
		}
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("POST %s: status %d, want 201: %v", url, resp.StatusCode, out)
		}
		return out
	}
}

// fhirDoResp POSTs body as FHIR JSON and returns the response (body
// closed) with the decoded answer.
func fhirDoResp(url string, body any) (*http.Response, map[string]any, error) {
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, nil, err
	}
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(raw))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "application/fhir+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp, out, nil
}
