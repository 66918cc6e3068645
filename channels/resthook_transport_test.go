package channels_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fhirsub/fhirsub/channels"
)

// closingReceiver answers each request "200, keep-alive" on a raw socket
// and then closes the connection, as a receiver whose idle timeout is
// shorter than ours does. It holds each answer until hold requests have
// come in (or a second has passed), so that as many connections are open
// at once. It counts the connections it accepted.
func closingReceiver(t *testing.T, hold int) (url string, conns *atomic.Int32) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	conns = new(atomic.Int32)
	var arrived atomic.Int32
	all := make(chan struct{})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer c.Close()
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil {
					return
				}
				_, _ = io.Copy(io.Discard, req.Body)
				if arrived.Add(1) == int32(hold) {
					close(all)
				}
				select {
				case <-all:
				case <-time.After(time.Second):
				}
				_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
				// closed without "Connection: close"
			}()
		}
	}()
	return "http://" + l.Addr().String() + "/hook", conns
}

// A receiver that closes its idle connections costs no failed delivery:
// the request that finds its kept-alive connection closed is sent again
// on another, however many of the pooled ones were closed meanwhile.
func TestRestHookStaleConnectionsAreSkipped(t *testing.T) {
	const parallel = 6
	url, conns := closingReceiver(t, parallel)
	rh := loopbackHook(t)
	// parallel connections open at once, then pooled, then closed by the
	// receiver
	var wg sync.WaitGroup
	errs := make(chan error, parallel)
	for range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := rh.Send(context.Background(), channels.Request{URL: url, Body: []byte(`{}`)})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("parallel send: %v", err)
		}
	}
	time.Sleep(50 * time.Millisecond) // setup: let the receiver's closes reach us
	for i := range 3 {
		if _, err := rh.Send(context.Background(), channels.Request{URL: url, Body: []byte(`{}`)}); err != nil {
			t.Fatalf("send %d after the receiver closed %d pooled connections: %v", i+1, parallel, err)
		}
	}
	if n := conns.Load(); n < parallel+1 {
		t.Fatalf("%d connections, want more than the %d closed ones", n, parallel)
	}
}

// Ending the context of a Send ends its request at once, even though the
// receiver never answers.
func TestRestHookContextEndsTheRequest(t *testing.T) {
	release := make(chan struct{})
	rv := newRHReceiver(t, func(http.ResponseWriter, *http.Request) {
		select {
		case <-release:
		case <-time.After(30 * time.Second):
		}
	})
	defer close(release)
	rh := loopbackHook(t)
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan error, 1)
	start := time.Now()
	go func() {
		_, err := rh.Send(ctx, channels.Request{URL: rv.URL, Timeout: 20 * time.Second})
		got <- err
	}()
	for len(rv.requests()) == 0 { // the request reached the receiver
		if time.Since(start) > 10*time.Second {
			t.Fatal("the request never reached the receiver")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-got:
		de := deliveryError(t, err)
		if de.Permanent || !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled send gave %+v (%v), want temporary context.Canceled", de, err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Send still running 5 s after its context ended")
	}
	// the RestHook stays usable
	ok := newRHReceiver(t, nil)
	if _, err := rh.Send(context.Background(), channels.Request{URL: ok.URL}); err != nil {
		t.Fatalf("send after a cancelled one: %v", err)
	}
}

// A 2xx answer with a body over MaxResponseBytes is a success; the body is
// not read past the limit and its connection is not used again.
func TestRestHookLargeSuccessBody(t *testing.T) {
	var conns atomic.Int32
	rv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(strings.Repeat("x", 1<<20)))
	}))
	rv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	rv.Start()
	t.Cleanup(rv.Close)
	rh := newTestRestHook(t, channels.RestHookConfig{Allow: []string{"127.0.0.1"}, MaxResponseBytes: 4096})
	for i := range 2 {
		resp, err := rh.Send(context.Background(), channels.Request{URL: rv.URL, Body: []byte(`{}`)})
		if err != nil || resp.Status != http.StatusOK {
			t.Fatalf("send %d: %+v, %v", i+1, resp, err)
		}
	}
	if n := conns.Load(); n != 2 {
		t.Fatalf("%d connections for 2 sends with oversized bodies, want 2 (none reused)", n)
	}
}

// Header lines cannot set what frames the request: the host, the body's
// length, the encoding. They are left out, and the request arrives whole.
func TestRestHookHeaderLinesCannotReframe(t *testing.T) {
	rv := newRHReceiver(t, nil)
	rh := loopbackHook(t)
	body := []byte(`{"resourceType":"Bundle"}`)
	_, err := rh.Send(context.Background(), channels.Request{URL: rv.URL + "/hook", Body: body, Headers: []string{
		"Content-Length: 3", "Transfer-Encoding: chunked", "Host: elsewhere.example", "User-Agent: spoof", "X-Kept: yes",
	}})
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	got := rv.requests()
	if len(got) != 1 {
		t.Fatalf("receiver got %d requests, want 1", len(got))
	}
	r := got[0]
	if string(r.body) != string(body) || r.header.Get("X-Kept") != "yes" || r.header.Get("User-Agent") != "fhirsub-rest-hook" {
		t.Fatalf("got body %q, headers %v", r.body, r.header)
	}
	if h := fmt.Sprint(r.header.Values("Transfer-Encoding")); h != "[]" {
		t.Fatalf("Transfer-Encoding %s was sent", h)
	}
}

// https endpoints are verified: a certificate no known authority signed
// is a failed delivery, and nothing reaches the receiver.
func TestRestHookHTTPSVerifiesCertificates(t *testing.T) {
	var got atomic.Int32
	rv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { got.Add(1) }))
	rv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake
	rv.StartTLS()
	t.Cleanup(rv.Close)
	rh := loopbackHook(t)
	_, err := rh.Send(context.Background(), channels.Request{URL: rv.URL + "/hook", Body: []byte(`{}`)})
	de := deliveryError(t, err)
	if de.Status != 0 || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("self-signed https receiver gave %+v (%v), want a certificate error", de, err)
	}
	if n := got.Load(); n != 0 {
		t.Fatalf("the receiver got %d requests over an unverified connection", n)
	}
}

// A body sent without a content type goes without one: fasthttp's default
// (application/octet-stream) is not added.
func TestRestHookNoDefaultContentType(t *testing.T) {
	rv := newRHReceiver(t, nil)
	if _, err := loopbackHook(t).Send(context.Background(), channels.Request{URL: rv.URL, Body: []byte(`{}`)}); err != nil {
		t.Fatalf("Send: %v", err)
	}
	got := rv.requests()
	if len(got) != 1 || string(got[0].body) != `{}` {
		t.Fatalf("receiver got %+v", got)
	}
	if ct := got[0].header.Get("Content-Type"); ct != "" {
		t.Fatalf("Content-Type %q sent for a request that named none", ct)
	}
}
