package web_test

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fhirsub/fhirsub/web"
)

// switchGate is a web.Backpressure the test turns on and off; it counts
// how often it was asked.
type switchGate struct {
	on    atomic.Bool
	asked atomic.Int64
}

func (g *switchGate) Overloaded() (time.Duration, string, bool) {
	g.asked.Add(1)
	if !g.on.Load() {
		return 0, "", false
	}
	return 2500 * time.Millisecond, "notification lag (rest-hook) is 12s, over the bound of 10s", true
}

func TestBackpressureGatesWritesOnly(t *testing.T) {
	gate := &switchGate{}
	s := mustServer(t, func(c *web.Config) { c.Backpressure = gate })

	pat := s.do(http.MethodPost, "/Patient", patient("Open")).wantStatus(t, http.StatusCreated)
	id := str(pat.JSON, "id")
	if gate.asked.Load() == 0 {
		t.Fatal("the gate was not asked on a create")
	}
	gate.on.Store(true)

	bundle := map[string]any{"resourceType": "Bundle", "type": "batch", "entry": []any{map[string]any{
		"resource": patient("Batch"), "request": map[string]any{"method": "POST", "url": "Patient"}}}}
	patch := `[{"op":"replace","path":"/active","value":true}]`
	writes := []struct {
		name, method, path string
		body               any
		headers            []string
	}{
		{"create", http.MethodPost, "/Patient", patient("Refused"), nil},
		{"update", http.MethodPut, "/Patient/" + id, map[string]any{"resourceType": "Patient", "id": id}, nil},
		{"conditional update", http.MethodPut, "/Patient?family=Open", patient("Open"), nil},
		{"patch", http.MethodPatch, "/Patient/" + id, patch, []string{"Content-Type", "application/json-patch+json"}},
		{"delete", http.MethodDelete, "/Patient/" + id, nil, nil},
		{"conditional delete", http.MethodDelete, "/Patient?family=Open", nil, nil},
		{"batch", http.MethodPost, "/", bundle, nil},
	}
	for _, w := range writes {
		r := s.do(w.method, w.path, w.body, w.headers...)
		r.wantOutcome(t, http.StatusServiceUnavailable, "notification lag", "over the bound")
		if got := str(r.JSON, "issue", 0, "code"); got != "transient" {
			t.Errorf("%s: issue code %q, want transient", w.name, got)
		}
		if got := r.Header.Get("Retry-After"); got != "3" { // 2.5 s rounded up
			t.Errorf("%s: Retry-After %q, want 3", w.name, got)
		}
	}

	reads := []string{"/Patient/" + id, "/Patient?family=Open", "/Patient/" + id + "/_history", "/_history",
		"/metadata", "/healthz", "/readyz"}
	for _, path := range reads {
		r := s.do(http.MethodGet, path, nil)
		if r.Status != http.StatusOK {
			t.Errorf("GET %s while writes are refused: %d %s", path, r.Status, r.Body)
		}
	}
	if r := s.do(http.MethodPost, "/Patient/_search", "family=Open", "Content-Type", "application/x-www-form-urlencoded"); r.Status != http.StatusOK {
		t.Errorf("POST _search while writes are refused: %d %s", r.Status, r.Body)
	}

	gate.on.Store(false)
	r := s.do(http.MethodPost, "/Patient", patient("Again")).wantStatus(t, http.StatusCreated)
	if strings.TrimSpace(r.Header.Get("Retry-After")) != "" {
		t.Errorf("accepted write carries Retry-After %q", r.Header.Get("Retry-After"))
	}
}

func TestBackpressureNilNeverRefuses(t *testing.T) {
	s := mustServer(t)
	s.do(http.MethodPost, "/Patient", patient("Free")).wantStatus(t, http.StatusCreated)
}
