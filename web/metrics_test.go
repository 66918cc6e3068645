package web_test

import (
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/fhirsub/fhirsub/web"
)

// exposition stands in for the Prometheus handler cmd/fhirsub builds: it
// answers a fixed text exposition and counts its calls.
type exposition struct{ calls atomic.Int32 }

const expositionBody = "# TYPE fhirsub_test_total counter\nfhirsub_test_total 1\n"

func (e *exposition) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	e.calls.Add(1)
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	_, _ = io.WriteString(w, expositionBody)
}

// get fetches url with an optional Authorization header and returns the
// status and body.
func get(t *testing.T, url, authorization string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestMetricsRoute checks that Config.Metrics is served at GET /metrics
// without a token even when authentication is on (like /healthz), that
// the rest of the API still demands one, and that without Config.Metrics
// the path is nothing special.
func TestMetricsRoute(t *testing.T) {
	auth := hsAuthenticator(t)

	t.Run("auth on", func(t *testing.T) {
		h := &exposition{}
		srv := mustServer(t, func(c *web.Config) { c.Auth, c.Metrics = auth, h })
		st, body := get(t, srv.URL+"/metrics", "")
		if st != http.StatusOK || body != expositionBody {
			t.Fatalf("GET /metrics without a token: %d %q, want 200 and the handler's body", st, body)
		}
		if st, _ := get(t, srv.URL+"/metrics", "Bearer not-a-token"); st != http.StatusOK {
			t.Errorf("GET /metrics with a bad token: %d, want 200 (the path is public)", st)
		}
		if n := h.calls.Load(); n != 2 {
			t.Errorf("metrics handler called %d times, want 2", n)
		}
		if st, _ := get(t, srv.URL+"/Patient", ""); st != http.StatusUnauthorized {
			t.Errorf("GET /Patient without a token: %d, want 401", st)
		}
	})

	t.Run("auth off", func(t *testing.T) {
		h := &exposition{}
		srv := mustServer(t, func(c *web.Config) { c.Metrics = h })
		if st, body := get(t, srv.URL+"/metrics", ""); st != http.StatusOK || body != expositionBody {
			t.Fatalf("GET /metrics: %d %q, want 200 and the handler's body", st, body)
		}
	})

	t.Run("no metrics handler", func(t *testing.T) {
		srv := mustServer(t)
		st, body := get(t, srv.URL+"/metrics", "")
		if st == http.StatusOK || strings.Contains(body, "fhirsub_test_total") {
			t.Fatalf("GET /metrics without Config.Metrics: %d %q, want an error (unknown resource type)", st, body)
		}
		if !strings.Contains(body, "OperationOutcome") {
			t.Errorf("GET /metrics without Config.Metrics answered %q, want an OperationOutcome", body)
		}
	})
}
