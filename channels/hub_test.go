package channels_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/fhirsub/fhirsub/channels"
)

func TestShutdownSends1001(t *testing.T) {
	checkGoroutines(t)
	hub, err := channels.New(channels.Config{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	legacy, _ := channels.NewLegacy(channels.LegacyConfig{})
	srv := newHTTPServer(t, hub.Handler(legacy))
	url := "ws" + strings.TrimPrefix(srv.URL, "http")

	const n = 5
	conns := make([]*websocket.Conn, n)
	for i := range conns {
		conns[i] = mustDial(t, url)
		subscribe(t, conns[i], "s", []string{"*"}, nil)
	}
	if got := hub.Len(); got != n {
		t.Fatalf("hub has %d connections, want %d", got, n)
	}

	codes := make(chan error, n)
	for _, ws := range conns {
		go func() {
			_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, _, err := ws.ReadMessage()
			codes <- err
		}()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hub.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	for range n {
		err := <-codes
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != channels.CloseGoingAway || ce.Text != channels.ReasonShutdown {
			t.Errorf("client read %v, want close 1001 %q", err, channels.ReasonShutdown)
		}
	}
	if got := hub.Len(); got != 0 {
		t.Errorf("hub still has %d connections after Shutdown", got)
	}
	// New upgrades are refused.
	_, resp, err := websocket.DefaultDialer.Dial(url, nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("dial after Shutdown: err %v, response %v; want 503", err, resp)
	}
	if err := hub.Shutdown(ctx); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
}

func newHTTPServer(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s
}

func TestSlowConsumerIsCutOff(t *testing.T) {
	checkGoroutines(t)
	ts := mustServe(t, channels.Config{SendQueue: 4, SendQueueBytes: 1 << 20, WriteTimeout: 2 * time.Second},
		channels.LegacyConfig{})

	// The slow client never reads, and its socket buffer is tiny.
	d := websocket.Dialer{NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetReadBuffer(4096)
		}
		return c, err
	}}
	slow, _, err := d.Dial(ts.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	subscribe(t, slow, "s", []string{"*"}, nil)
	fast := mustDial(t, ts.url)
	subscribe(t, fast, "s", []string{"*"}, nil)

	// Publish in lockstep with the fast client: it never lags, while the
	// slow one fills its socket, then its queue, and is cut off.
	big := `{"resourceType":"Binary","id":"b","data":"` + strings.Repeat("A", 64<<10) + `"}`
	const events = 600
	var slowest time.Duration
	for i := 1; i <= events; i++ {
		ev := update(t, int64(i), channels.ActionCreated, "Binary", "b", nil, big)
		start := time.Now()
		ts.legacy.Publish(int64(i), []*channels.LegacyEvent{ev})
		slowest = max(slowest, time.Since(start))
		m := recvType(t, fast, "update")
		if *m.Seq != int64(i) {
			t.Fatalf("fast client got seq %d, want %d", *m.Seq, i)
		}
	}
	// A fan-out that waited for the stalled socket would block until its
	// write deadline (WriteTimeout, 2 s); a loaded machine under -race
	// takes well over 100 ms for a fan-out now and then, never a second.
	t.Logf("slowest Publish: %v (a wait for the stalled socket would take the 2 s write timeout)", slowest)
	if slowest >= time.Second {
		t.Errorf("one Publish took %v: the fan-out waited for a socket", slowest)
	}
	eventually(t, "the slow consumer to be disconnected", func() bool { return ts.hub.Len() == 1 })

	// The fast client's connection is the one left, and it still works.
	send(t, fast, `{"type":"ping"}`)
	recvType(t, fast, "pong")
	// (The slow client, with its 4 KiB window, would take long to drain
	// the megabytes already in flight before it sees the end.)
}

func TestDeadPeerIsClosed(t *testing.T) {
	checkGoroutines(t)
	ts := mustServe(t, channels.Config{PingInterval: 50 * time.Millisecond, WriteTimeout: 100 * time.Millisecond,
		PongTimeout: 300 * time.Millisecond}, channels.LegacyConfig{})
	// A client that reads answers pings (gorilla does it inside reads).
	alive := mustDial(t, ts.url)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			if _, _, err := alive.ReadMessage(); err != nil {
				return
			}
		}
	}()
	// A client that never reads never answers pings.
	dead := mustDial(t, ts.url)
	_ = dead
	eventually(t, "two connections", func() bool { return ts.hub.Len() == 2 })
	eventually(t, "the dead peer to be closed", func() bool { return ts.hub.Len() == 1 })
	time.Sleep(time.Second) // several pong timeouts
	if got := ts.hub.Len(); got != 1 {
		t.Errorf("hub has %d connections, want the live one", got)
	}
	_ = alive.Close()
	wg.Wait()
}

func TestReadLimit(t *testing.T) {
	checkGoroutines(t)
	ts := mustServe(t, channels.Config{ReadLimit: 1024}, channels.LegacyConfig{})
	ws := mustDial(t, ts.url)
	send(t, ws, `{"type":"ping","pad":"`+strings.Repeat("x", 2000)+`"}`)
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _, err := ws.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != channels.CloseMessageTooBig {
		t.Fatalf("read after a too large frame: %v, want close 1009", err)
	}
}

func TestBinaryFrameRefused(t *testing.T) {
	checkGoroutines(t)
	ts := mustServe(t, channels.Config{}, channels.LegacyConfig{})
	ws := mustDial(t, ts.url)
	if err := ws.WriteMessage(websocket.BinaryMessage, []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _, err := ws.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseUnsupportedData {
		t.Fatalf("read after a binary frame: %v, want close 1003", err)
	}
}

func TestUpgradeRefused(t *testing.T) {
	checkGoroutines(t)
	ts := mustServe(t, channels.Config{}, channels.LegacyConfig{
		Authorize: func(r *http.Request) (channels.LegacyAccess, error) {
			if r.URL.Query().Get("access_token") != "good" {
				return channels.LegacyAccess{}, &channels.RejectError{Status: http.StatusUnauthorized, Reason: "bad token"}
			}
			return channels.LegacyAccess{AllPatients: true}, nil
		},
	})
	for _, tc := range []struct {
		name, query string
		status      int
	}{
		{"no token", "", http.StatusUnauthorized},
		{"bad client_id", "?access_token=good&client_id=" + strings.Repeat("x", 200), http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, resp, err := websocket.DefaultDialer.Dial(ts.url+tc.query, nil)
			if err == nil || resp == nil || resp.StatusCode != tc.status {
				t.Fatalf("dial: err %v, response %v; want %d", err, resp, tc.status)
			}
		})
	}
	ws := mustDial(t, ts.url+"?access_token=good")
	send(t, ws, `{"type":"ping"}`)
	recvType(t, ws, "pong")

	// A plain GET is not an upgrade.
	resp, err := http.Get(ts.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUpgradeRequired {
		t.Errorf("plain GET: %d, want 426", resp.StatusCode)
	}
}

func ExampleHub() {
	hub, _ := channels.New(channels.Config{})
	legacy, _ := channels.NewLegacy(channels.LegacyConfig{})
	mux := http.NewServeMux()
	mux.Handle("GET /ws", hub.Handler(legacy))
	// … serve mux; on shutdown, after http.Server.Shutdown:
	_ = hub.Shutdown(context.Background())
	fmt.Println(hub.Len())
	// Output: 0
}
