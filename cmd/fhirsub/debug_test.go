package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestDebugAddrServesProfiler: --debug-addr serves Go's profiler on its
// own loopback listener, and the FHIR API does not serve it.
func TestDebugAddrServesProfiler(t *testing.T) {
	debug := freeAddr(t)
	a := mustStartAt(t, t.TempDir(), "127.0.0.1:0", "--debug-addr", debug)
	defer func() { _ = a.shutdown(context.Background()) }()

	get := func(url string) (int, string) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := get("http://" + debug + "/debug/pprof/goroutine?debug=1")
	t.Logf("debug listener: %d, %d bytes", code, len(body))
	if code != http.StatusOK || !strings.Contains(body, "goroutine profile") {
		t.Fatalf("GET /debug/pprof/goroutine on %s: %d %.200s", debug, code, body)
	}
	code, body = get(a.baseURL + "/debug/pprof/goroutine?debug=1")
	t.Logf("API listener: %d", code)
	if code == http.StatusOK || strings.Contains(body, "goroutine profile") {
		t.Fatalf("the FHIR API serves the profiler: %d %.200s", code, body)
	}
}
