package channels_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fhirsub/fhirsub/channels"
)

// rhRequest is what a test receiver saw.
type rhRequest struct {
	method, path string
	header       http.Header
	body         []byte
}

// rhReceiver is a real HTTP server that records requests and answers with
// handle (200 when nil).
type rhReceiver struct {
	*httptest.Server
	mu     sync.Mutex
	got    []rhRequest
	handle func(w http.ResponseWriter, r *http.Request)
}

func newRHReceiver(t testing.TB, handle func(w http.ResponseWriter, r *http.Request)) *rhReceiver {
	t.Helper()
	rv := &rhReceiver{handle: handle}
	rv.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("receiver: read body: %v", err)
		}
		rv.mu.Lock()
		rv.got = append(rv.got, rhRequest{r.Method, r.URL.RequestURI(), r.Header.Clone(), body})
		rv.mu.Unlock()
		if rv.handle != nil {
			rv.handle(w, r)
		}
	}))
	t.Cleanup(rv.Close)
	return rv
}

func (rv *rhReceiver) requests() []rhRequest {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	return append([]rhRequest(nil), rv.got...)
}

// hostPort is the receiver's "127.0.0.1:port".
func (rv *rhReceiver) hostPort() string { return strings.TrimPrefix(rv.URL, "http://") }

func newTestRestHook(t testing.TB, cfg channels.RestHookConfig) *channels.RestHook {
	t.Helper()
	rh, err := channels.NewRestHook(cfg)
	if err != nil {
		t.Fatalf("NewRestHook: %v", err)
	}
	t.Cleanup(func() { _ = rh.Close() })
	return rh
}

// loopbackHook allows 127.0.0.1, as FHIRSUB_RESTHOOK_ALLOW does in tests.
func loopbackHook(t testing.TB) *channels.RestHook {
	return newTestRestHook(t, channels.RestHookConfig{Allow: []string{"127.0.0.1"}, DefaultTimeout: 5 * time.Second})
}

func deliveryError(t *testing.T, err error) *channels.DeliveryError {
	t.Helper()
	var de *channels.DeliveryError
	if !errors.As(err, &de) {
		t.Fatalf("error %v (%T) is not a *DeliveryError", err, err)
	}
	return de
}

func TestRestHookPostWithPayload(t *testing.T) {
	rv := newRHReceiver(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusAccepted) })
	now := time.Unix(1_780_000_000, 0)
	rh := newTestRestHook(t, channels.RestHookConfig{Allow: []string{"127.0.0.1/32"}, Now: func() time.Time { return now }})
	secret := []byte("s3cret")
	body := []byte(`{"resourceType":"Bundle","type":"history"}`)
	resp, err := rh.Send(context.Background(), channels.Request{
		URL: rv.URL + "/hook?x=1",
		Headers: []string{
			"Authorization: Bearer abc.def:ghi", // split at the first ':' only
			"  X-Custom  :   spaced value  ",
			"X-Multi: one", "X-Multi: two",
		},
		ContentType: "application/fhir+json",
		Body:        body,
		Secret:      secret,
	})
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if resp.Status != http.StatusAccepted {
		t.Fatalf("Status = %d, want 202", resp.Status)
	}
	got := rv.requests()
	if len(got) != 1 {
		t.Fatalf("receiver got %d requests, want 1", len(got))
	}
	r := got[0]
	if r.method != http.MethodPost || r.path != "/hook?x=1" || string(r.body) != string(body) {
		t.Errorf("got %s %s %q", r.method, r.path, r.body)
	}
	for name, want := range map[string]string{
		"Authorization":       "Bearer abc.def:ghi",
		"X-Custom":            "spaced value",
		"Content-Type":        "application/fhir+json",
		"User-Agent":          "fhirsub-rest-hook",
		"X-Fhirsub-Timestamp": "1780000000",
	} {
		if v := r.header.Get(name); v != want {
			t.Errorf("header %s = %q, want %q", name, v, want)
		}
	}
	if v := r.header.Values("X-Multi"); len(v) != 2 || v[0] != "one" || v[1] != "two" {
		t.Errorf("X-Multi = %q, want [one two]", v)
	}
	// The receiver verifies the signature with the documented recipe:
	// hex(HMAC-SHA256(secret, timestamp + "." + body)).
	ts := r.header.Get(channels.TimestampHeader)
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts + "." + string(r.body)))
	want := "sha256=" + hex.EncodeToString(m.Sum(nil))
	if sig := r.header.Get(channels.SignatureHeader); !hmac.Equal([]byte(sig), []byte(want)) {
		t.Errorf("signature %q, want %q", sig, want)
	}
	if channels.Sign(secret, ts, r.body) != want {
		t.Error("Sign disagrees with the documented recipe")
	}
	if channels.Sign([]byte("other"), ts, r.body) == want || channels.Sign(secret, "1", r.body) == want {
		t.Error("signature does not depend on key and timestamp")
	}
}

func TestRestHookPutAndEmptyPost(t *testing.T) {
	rv := newRHReceiver(t, nil)
	rh := loopbackHook(t)
	ctx := context.Background()
	if _, err := rh.Send(ctx, channels.Request{Method: "PUT", URL: rv.URL + "/fhir/Observation/o1",
		ContentType: "application/fhir+json", Body: []byte(`{"resourceType":"Observation","id":"o1"}`)}); err != nil {
		t.Fatalf("PUT: %v", err)
	}
	// Classic R4 rest-hook without payload: an empty POST, no signature.
	if _, err := rh.Send(ctx, channels.Request{Method: "POST", URL: rv.URL + "/notify"}); err != nil {
		t.Fatalf("empty POST: %v", err)
	}
	got := rv.requests()
	if len(got) != 2 {
		t.Fatalf("receiver got %d requests", len(got))
	}
	if got[0].method != "PUT" || got[0].path != "/fhir/Observation/o1" || !strings.Contains(string(got[0].body), `"o1"`) {
		t.Errorf("PUT arrived as %s %s %q", got[0].method, got[0].path, got[0].body)
	}
	e := got[1]
	if e.method != "POST" || len(e.body) != 0 || e.header.Get("Content-Length") != "0" && e.header.Get("Content-Length") != "" {
		t.Errorf("empty POST arrived as %s, body %q, Content-Length %q", e.method, e.body, e.header.Get("Content-Length"))
	}
	if ct := e.header.Get("Content-Type"); ct != "" {
		t.Errorf("empty POST has Content-Type %q", ct)
	}
	if e.header.Get(channels.SignatureHeader) != "" || e.header.Get(channels.TimestampHeader) != "" {
		t.Error("unsigned request carries signature headers")
	}
}

func TestRestHookStatuses(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	target := newRHReceiver(t, nil)
	rv := newRHReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/429":
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(429)
		case "/429date":
			w.Header().Set("Retry-After", now.Add(90*time.Second).Format(http.TimeFormat))
			w.WriteHeader(429)
		case "/503":
			w.Header().Set("Retry-After", "30")
			w.WriteHeader(503)
		case "/302":
			http.Redirect(w, r, target.URL+"/elsewhere", http.StatusFound)
		case "/500big":
			w.WriteHeader(500)
			_, _ = w.Write([]byte(strings.Repeat("x", 1<<20)))
		default:
			code, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/"))
			if err != nil {
				code = 599
			}
			w.WriteHeader(code)
			_, _ = w.Write([]byte("reason\r\nfrom receiver"))
		}
	})
	rh := newTestRestHook(t, channels.RestHookConfig{Allow: []string{"127.0.0.1"}, Now: func() time.Time { return now },
		MaxResponseBytes: 4096})
	for _, tc := range []struct {
		path       string
		ok         bool
		permanent  bool
		retryAfter time.Duration
	}{
		{"/200", true, false, 0},
		{"/201", true, false, 0},
		{"/204", true, false, 0},
		{"/500", false, false, 0},
		{"/502", false, false, 0},
		{"/503", false, false, 30 * time.Second},
		{"/408", false, false, 0},
		{"/429", false, false, 7 * time.Second},
		{"/429date", false, false, 90 * time.Second},
		{"/400", false, true, 0},
		{"/401", false, true, 0},
		{"/404", false, true, 0},
		{"/410", false, true, 0},
		{"/302", false, true, 0},
		{"/500big", false, false, 0},
	} {
		t.Run(tc.path[1:], func(t *testing.T) {
			resp, err := rh.Send(context.Background(), channels.Request{URL: rv.URL + tc.path, Body: []byte("{}")})
			if tc.ok {
				if err != nil {
					t.Fatalf("Send: %v", err)
				}
				return
			}
			de := deliveryError(t, err)
			if resp.Status != 0 || de.Permanent != tc.permanent || de.RetryAfter != tc.retryAfter || de.Status == 0 {
				t.Fatalf("got %+v (%v), want permanent=%v retryAfter=%v", de, err, tc.permanent, tc.retryAfter)
			}
			if !errors.Is(err, channels.ErrHTTPStatus) {
				t.Fatalf("%v does not wrap ErrHTTPStatus", err)
			}
			if msg := err.Error(); strings.ContainsAny(msg, "\r\n") || len(msg) > 400 {
				t.Fatalf("error message not sanitised or too long (%d bytes): %q", len(msg), msg)
			}
		})
	}
	if n := len(target.requests()); n != 0 {
		t.Errorf("the redirect was followed: target got %d requests", n)
	}
}

func TestRestHookTimeout(t *testing.T) {
	rv := newRHReceiver(t, func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	})
	rh := loopbackHook(t)
	start := time.Now()
	_, err := rh.Send(context.Background(), channels.Request{URL: rv.URL, Timeout: 100 * time.Millisecond})
	de := deliveryError(t, err)
	if de.Permanent || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("timeout gave %+v (%v), want temporary deadline exceeded", de, err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Send took %v with a 100 ms timeout", d)
	}
}

func TestRestHookNetworkErrorIsTemporary(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close() // nothing listens there now
	_, err = loopbackHook(t).Send(context.Background(), channels.Request{URL: "http://" + addr + "/"})
	if de := deliveryError(t, err); de.Permanent || de.Status != 0 {
		t.Fatalf("connection refused gave %+v", de)
	}
}

func TestRestHookRefusesDestinations(t *testing.T) {
	rv := newRHReceiver(t, nil)
	other := newRHReceiver(t, nil)
	_, port, _ := net.SplitHostPort(rv.hostPort())
	// Only the first receiver's port is allow-listed.
	rh := newTestRestHook(t, channels.RestHookConfig{Allow: []string{"127.0.0.1:" + port}})
	if _, err := rh.Send(context.Background(), channels.Request{URL: rv.URL}); err != nil {
		t.Fatalf("allow-listed 127.0.0.1:%s: %v", port, err)
	}
	_, otherPort, _ := net.SplitHostPort(other.hostPort())
	for _, tc := range []struct{ name, url string }{
		{"LoopbackNotAllowListed", other.URL},
		{"Private10", "http://10.0.0.1/hook"},
		{"Private192", "http://192.168.1.20:8080/hook"},
		{"Metadata", "http://169.254.169.254/latest/meta-data/"},
		{"IPv6Loopback", "http://[::1]:" + otherPort + "/"},
		{"MappedLoopback", "http://[::ffff:127.0.0.1]:" + otherPort + "/"},
		{"Unspecified", "http://0.0.0.0:" + otherPort + "/"},
		{"Multicast", "http://224.0.0.1/"},
		{"LocalhostName", "http://localhost:" + otherPort + "/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := rh.Send(context.Background(), channels.Request{URL: tc.url, Body: []byte("{}")})
			de := deliveryError(t, err)
			if !de.Permanent || !errors.Is(err, channels.ErrBlockedAddress) {
				t.Fatalf("got %+v (%v), want a permanent ErrBlockedAddress", de, err)
			}
		})
	}
	if n := len(other.requests()); n != 0 {
		t.Fatalf("a refused endpoint received %d requests", n)
	}
	if n := len(rv.requests()); n != 1 {
		t.Fatalf("allowed receiver got %d requests, want 1", n)
	}
	// A host-name pattern admits that name whatever it resolves to.
	byName := newTestRestHook(t, channels.RestHookConfig{Allow: []string{"localhost:" + otherPort}})
	if _, err := byName.Send(context.Background(), channels.Request{URL: "http://localhost:" + otherPort + "/"}); err != nil {
		if errors.Is(err, channels.ErrBlockedAddress) {
			t.Fatalf("localhost allow-listed by name was refused: %v", err)
		}
		// localhost resolving to ::1 only on this host is not our concern.
		t.Logf("send to localhost: %v", err)
	}
}

func TestRestHookRefusesBadRequests(t *testing.T) {
	rv := newRHReceiver(t, nil)
	rh := loopbackHook(t)
	for _, tc := range []struct {
		name string
		req  channels.Request
		want error
	}{
		{"CRLFInValue", channels.Request{URL: rv.URL, Headers: []string{"X-A: b\r\nX-Evil: 1"}}, channels.ErrInvalidHeader},
		{"LFInValue", channels.Request{URL: rv.URL, Headers: []string{"X-A: b\nX-Evil: 1"}}, channels.ErrInvalidHeader},
		{"CRInName", channels.Request{URL: rv.URL, Headers: []string{"X-A\r: b"}}, channels.ErrInvalidHeader},
		{"NulInValue", channels.Request{URL: rv.URL, Headers: []string{"X-A: b\x00c"}}, channels.ErrInvalidHeader},
		{"SpaceInName", channels.Request{URL: rv.URL, Headers: []string{"Bad Name: x"}}, channels.ErrInvalidHeader},
		{"NoColon", channels.Request{URL: rv.URL, Headers: []string{"Authorization Bearer x"}}, channels.ErrInvalidHeader},
		{"EmptyName", channels.Request{URL: rv.URL, Headers: []string{": x"}}, channels.ErrInvalidHeader},
		{"CRLFContentType", channels.Request{URL: rv.URL, ContentType: "application/json\r\nX-Evil: 1"}, channels.ErrInvalidHeader},
		{"NoScheme", channels.Request{URL: "example.org/hook"}, channels.ErrInvalidEndpoint},
		{"FTP", channels.Request{URL: "ftp://example.org/hook"}, channels.ErrInvalidEndpoint},
		{"UserInfo", channels.Request{URL: "http://user:pw@" + rv.hostPort() + "/"}, channels.ErrInvalidEndpoint},
		{"Fragment", channels.Request{URL: rv.URL + "/#frag"}, channels.ErrInvalidEndpoint},
		{"BadMethod", channels.Request{Method: "GET", URL: rv.URL}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := rh.Send(context.Background(), tc.req)
			de := deliveryError(t, err)
			if !de.Permanent || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("got %+v (%v), want permanent %v", de, err, tc.want)
			}
		})
	}
	if n := len(rv.requests()); n != 0 {
		t.Fatalf("refused requests reached the receiver: %+v", rv.requests())
	}
}

func TestValidateEndpoint(t *testing.T) {
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"https://hooks.example.org/fhir/notify", true},
		{"http://example.org:8080/a?b=c", true},
		{"https://[2001:db8::1]:8443/x", true},
		{"http://10.0.0.1/x", true}, // address checks run at send time
		{"", false},
		{"example.org/hook", false},
		{"ftp://example.org/hook", false},
		{"mailto:someone@example.org", false},
		{"http://", false},
		{"http:///path", false},
		{"http://user@example.org/", false},
		{"http://user:pw@example.org/", false},
		{"http://example.org/#frag", false},
		{"http://example.org/#", false},
		{"http://example.org:0/", false},
		{"http://example.org:99999/", false},
		{"http://[::1/", false},
		{"http://exa mple.org/", false},
	} {
		err := channels.ValidateEndpoint(tc.url)
		if (err == nil) != tc.ok {
			t.Errorf("ValidateEndpoint(%q) = %v, want ok=%v", tc.url, err, tc.ok)
		}
		if err != nil && !errors.Is(err, channels.ErrInvalidEndpoint) {
			t.Errorf("ValidateEndpoint(%q) = %v, not ErrInvalidEndpoint", tc.url, err)
		}
	}
}

func TestNewRestHookAllowPatterns(t *testing.T) {
	for _, p := range []string{"127.0.0.1", "::1", "10.0.0.0/8", "fd00::/8", "127.0.0.1:8080", "[::1]:*",
		"hooks.internal:443", "receiver.internal", "localhost:*"} {
		if _, err := channels.NewRestHook(channels.RestHookConfig{Allow: []string{p}}); err != nil {
			t.Errorf("pattern %q refused: %v", p, err)
		}
	}
	for _, p := range []string{"", "10.0.0.0/33", "127.0.0.1:0", "127.0.0.1:http", "bad host:80", "-x.org", "a..b"} {
		if _, err := channels.NewRestHook(channels.RestHookConfig{Allow: []string{p}}); err == nil {
			t.Errorf("pattern %q accepted", p)
		}
	}
}
