package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// refusal is one answer of refusingServer.
type refusal struct {
	status int
	after  string
}

// refusingServer answers the first len(refusals) POSTs with the given
// status and Retry-After ("" for none), then 201 with a Location.
func refusingServer(t *testing.T, refusals []refusal) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := int(calls.Add(1)) - 1
		if i < len(refusals) {
			if a := refusals[i].after; a != "" {
				w.Header().Set("Retry-After", a)
			}
			w.WriteHeader(refusals[i].status)
			_, _ = w.Write([]byte(`{"resourceType":"OperationOutcome"}`))
			return
		}
		w.Header().Set("Location", "http://"+r.Host+"/Observation/obs1/_history/1")
		w.WriteHeader(http.StatusCreated)
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

func TestCreateHonoursRetryAfter(t *testing.T) {
	ctx := context.Background()
	// Retry-After 0 and a date in the past both mean "now": no test waits.
	past := time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat)
	srv, calls := refusingServer(t, []refusal{{503, "0"}, {429, past}, {503, "0"}})
	c := newClient(srv.URL, 2, 5)
	defer c.close()
	id, st, err := c.create(ctx, "Observation", []byte(`{}`))
	t.Logf("id %q status %d err %v, refusals %d, calls %d", id, st, err, c.refusals(), calls.Load())
	if err != nil || id != "obs1" || st != http.StatusCreated {
		t.Fatalf("want obs1 created after the refusals, got %q %d %v", id, st, err)
	}
	if c.refusals() != 3 || calls.Load() != 4 {
		t.Errorf("refusals %d calls %d, want 3 and 4 (the same write retried)", c.refusals(), calls.Load())
	}

	// bounded: with 1 retry the second refusal is the error
	srv, calls = refusingServer(t, []refusal{{503, "0"}, {503, "0"}, {503, "0"}})
	c = newClient(srv.URL, 2, 1)
	defer c.close()
	id, st, err = c.create(ctx, "Observation", []byte(`{}`))
	t.Logf("id %q status %d err %v, refusals %d, calls %d", id, st, err, c.refusals(), calls.Load())
	if err == nil || id != "" || st != 503 || !strings.Contains(err.Error(), "retries exhausted") {
		t.Errorf("want the 503 as an error once retries are exhausted, got %q %d %v", id, st, err)
	}
	if c.refusals() != 2 || calls.Load() != 2 {
		t.Errorf("refusals %d calls %d, want 2 and 2", c.refusals(), calls.Load())
	}

	// a 503 without Retry-After and a 500 are errors, not refusals, and are not retried
	for _, r := range []refusal{{503, ""}, {500, "0"}, {503, "soon"}} {
		srv, calls = refusingServer(t, []refusal{r})
		c = newClient(srv.URL, 2, 5)
		_, st, err = c.create(ctx, "Observation", []byte(`{}`))
		t.Logf("%d %q: status %d err %v, refusals %d, calls %d", r.status, r.after, st, err, c.refusals(), calls.Load())
		if err == nil || c.refusals() != 0 || calls.Load() != 1 {
			t.Errorf("%d with Retry-After %q: want one call, an error, no refusal", r.status, r.after)
		}
		c.close()
	}
}

func TestCreateRetryStopsWithTheContext(t *testing.T) {
	srv, calls := refusingServer(t, []refusal{{503, "30"}})
	c := newClient(srv.URL, 2, 5)
	defer c.close()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, _, err := c.create(ctx, "Observation", []byte(`{}`))
	took := time.Since(start)
	t.Logf("err %v after %v, refusals %d, calls %d", err, took, c.refusals(), calls.Load())
	if err == nil || c.refusals() != 1 || calls.Load() != 1 {
		t.Errorf("want the refusal counted and the wait cut by the context, got err %v", err)
	}
	if took > 10*time.Second {
		t.Errorf("the 30 s Retry-After was waited out (%v) despite the context", took)
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 12, 6, 5, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"3", 3 * time.Second, true},
		{" 1 ", time.Second, true},
		{"3600", maxRetryWait, true},
		{now.Add(7 * time.Second).Format(http.TimeFormat), 7 * time.Second, true},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0, true},
		{"", 0, false}, {"-1", 0, false}, {"later", 0, false},
	} {
		got, ok := retryAfter(c.in, now)
		if got != c.want || ok != c.ok {
			t.Errorf("retryAfter(%q) = %v %v, want %v %v", c.in, got, ok, c.want, c.ok)
		}
	}
}
