package main

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// infernoReceiver is a rest-hook endpoint with the timing model of
// Inferno's subscriptions test kit: notifications are routed to the test
// session by their bearer token, and a token's requests are answered 500
// and kept nowhere until the test run is "waiting" for that token — which
// Inferno starts only after its FHIR client has read the 201 of the POST
// /Subscription. While waiting, every request is kept and answered 200,
// tagged by the type and subscription id its status Parameters name.
type infernoReceiver struct {
	t   testing.TB
	srv *httptest.Server

	mu      sync.Mutex
	waiting map[string]bool // token → the run is waiting for it
	kept    []infernoRequest
	refused int // requests answered 500 because no run was waiting
	notify  chan struct{}
}

// infernoRequest is one kept notification request.
type infernoRequest struct {
	Token       string
	ContentType string
	Header      http.Header
	Body        []byte
	Type        string // the type parameter (handshake, heartbeat, event-notification)
	SubID       string // last path segment of the subscription parameter
	At          time.Time
}

func newInfernoReceiver(t testing.TB) *infernoReceiver {
	t.Helper()
	r := &infernoReceiver{t: t, waiting: map[string]bool{}, notify: make(chan struct{}, 1)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.srv = httptest.NewUnstartedServer(http.HandlerFunc(r.handle))
	_ = r.srv.Listener.Close()
	r.srv.Listener = ln
	r.srv.Start()
	t.Cleanup(r.srv.Close)
	return r
}

// URL is the notification listener Inferno writes into channel.endpoint.
func (r *infernoReceiver) URL() string {
	return r.srv.URL + "/custom/subscriptions_r5_backport_r4_server/subscription/channel/notification_listener"
}

func (r *infernoReceiver) handle(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	token, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer ")
	r.mu.Lock()
	if !ok || !r.waiting[token] {
		r.refused++
		r.mu.Unlock()
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	kr := infernoRequest{Token: token, ContentType: req.Header.Get("Content-Type"), Header: req.Header.Clone(),
		Body: body, At: time.Now()}
	kr.Type, kr.SubID = tagNotification(body)
	r.kept = append(r.kept, kr)
	r.mu.Unlock()
	select {
	case r.notify <- struct{}{}:
	default:
	}
	w.WriteHeader(http.StatusOK)
}

// tagNotification reads the type and subscription id of a notification
// body, as Inferno tags its requests ("" when the body says nothing).
func tagNotification(body []byte) (typ, sub string) {
	var b struct {
		Entry []struct {
			Resource struct {
				Parameter []struct {
					Name           string `json:"name"`
					ValueCode      string `json:"valueCode"`
					ValueReference struct {
						Reference string `json:"reference"`
					} `json:"valueReference"`
				} `json:"parameter"`
			} `json:"resource"`
		} `json:"entry"`
	}
	if json.Unmarshal(body, &b) != nil || len(b.Entry) == 0 {
		return "", ""
	}
	for _, p := range b.Entry[0].Resource.Parameter {
		switch p.Name {
		case "type":
			typ = p.ValueCode
		case "subscription":
			ref := p.ValueReference.Reference
			sub = ref[strings.LastIndex(ref, "/")+1:]
		}
	}
	return typ, sub
}

// wait marks the run as waiting for token (or not).
func (r *infernoReceiver) wait(token string, on bool) {
	r.mu.Lock()
	r.waiting[token] = on
	r.mu.Unlock()
}

// requests returns the kept requests of one type ("" for all) about one
// subscription id ("" for all).
func (r *infernoReceiver) requests(typ, sub string) []infernoRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []infernoRequest
	for _, k := range r.kept {
		if (typ == "" || k.Type == typ) && (sub == "" || k.SubID == sub) {
			out = append(out, k)
		}
	}
	return out
}

// refusedCount is the number of requests answered 500 so far.
func (r *infernoReceiver) refusedCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.refused
}

// until polls cond (waking on every kept request) until it holds or the
// timeout passes, and reports whether it held.
func (r *infernoReceiver) until(timeout time.Duration, cond func() bool) bool {
	return pollUntil(r.notify, timeout, cond)
}
