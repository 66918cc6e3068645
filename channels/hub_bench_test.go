package channels_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/fhirsub/fhirsub/channels"
)

// raiseFileLimit lifts RLIMIT_NOFILE so that n connections (two sockets
// each, client and server in this process) fit; it returns how many fit.
func raiseFileLimit(tb testing.TB, n int) int {
	tb.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return n
	}
	want := uint64(2*n + 512)
	if lim.Cur < want {
		lim.Cur = want
		if lim.Max < want {
			lim.Max = want // works as root only
		}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
			lim.Cur = lim.Max
			_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
		}
		_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	if fit := int(lim.Cur-512) / 2; fit < n {
		tb.Logf("RLIMIT_NOFILE %d: using %d connections instead of %d", lim.Cur, fit, n)
		return fit
	}
	return n
}

// benchServer serves the legacy protocol on 127.0.0.1 with a real
// http.Server (as in production).
func benchServer(tb testing.TB, hcfg channels.Config) (*channels.Hub, *channels.Legacy, string) {
	tb.Helper()
	hub, err := channels.New(hcfg)
	if err != nil {
		tb.Fatal(err)
	}
	legacy, _ := channels.NewLegacy(channels.LegacyConfig{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srv := &http.Server{Handler: hub.Handler(legacy), ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() { _ = srv.Serve(ln); close(done) }()
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
		_ = hub.Shutdown(ctx)
	})
	return hub, legacy, ln.Addr().String()
}

// rawDial opens a websocket with a hand-written handshake and subscribes,
// keeping nothing but the socket on the client side (no goroutine, no
// buffer), so that the memory measured is the server's.
func rawDial(addr string, i int) (net.Conn, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	var key [16]byte
	_, _ = rand.Read(key[:])
	req := "GET /ws HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + base64.StdEncoding.EncodeToString(key[:]) + "\r\n\r\n"
	if _, err := c.Write([]byte(req)); err != nil {
		c.Close()
		return nil, err
	}
	br := bufio.NewReaderSize(c, 512)
	status, err := br.ReadString('\n')
	if err != nil || !strings.Contains(status, " 101 ") {
		c.Close()
		return nil, fmt.Errorf("handshake: %q %v", status, err)
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			c.Close()
			return nil, err
		}
		if line == "\r\n" {
			break
		}
	}
	sub := fmt.Sprintf(`{"type":"subscribe","data":{"subscription_id":"s","resource_types":["Observation"],"patient_ids":["p%d"]}}`, i)
	// A masked text frame with a zero mask key (payload < 126 bytes).
	frame := append([]byte{0x81, 0x80 | byte(len(sub)), 0, 0, 0, 0}, sub...)
	if _, err := c.Write(frame); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func heapAndStack() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse + ms.StackInuse
}

// BenchmarkIdleConnections holds 10,000 idle, subscribed connections and
// reports the memory they cost (heap + stacks, server side plus the bare
// client sockets) per connection.
func BenchmarkIdleConnections(b *testing.B) {
	n := raiseFileLimit(b, 10000)
	hub, _, addr := benchServer(b, channels.Config{})
	for b.Loop() {
		conns := make([]net.Conn, 0, n)
		before := heapAndStack()
		for i := range n {
			c, err := rawDial(addr, i)
			if err != nil {
				b.Fatalf("connection %d: %v", i, err)
			}
			conns = append(conns, c)
		}
		deadline := time.Now().Add(30 * time.Second)
		for hub.Len() < n && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(200 * time.Millisecond) // let the subscribe frames be handled
		after := heapAndStack()
		b.ReportMetric(float64(after-before)/float64(n), "B/conn")
		b.ReportMetric(float64(hub.Len()), "conns")
		for _, c := range conns {
			_ = c.Close()
		}
		for hub.Len() > 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// BenchmarkFanout10k measures the time from Publish to the last of 10,000
// clients reading the frame.
func BenchmarkFanout10k(b *testing.B) {
	n := raiseFileLimit(b, 10000)
	_, legacy, addr := benchServer(b, channels.Config{})
	var got atomic.Int64
	var wg sync.WaitGroup
	round := make(chan struct{}, 1)
	conns := make([]*websocket.Conn, 0, n)
	for i := range n {
		ws, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/ws", nil)
		if err != nil {
			b.Fatalf("dial %d: %v", i, err)
		}
		conns = append(conns, ws)
		if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"subscribe","data":{"subscription_id":"s","resource_types":["Observation"]}}`)); err != nil {
			b.Fatal(err)
		}
		if _, _, err := ws.ReadMessage(); err != nil {
			b.Fatal(err)
		}
	}
	for _, ws := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				if _, _, err := ws.ReadMessage(); err != nil {
					return
				}
				if got.Add(1)%int64(n) == 0 {
					round <- struct{}{}
				}
			}
		}()
	}
	body := `{"resourceType":"Observation","id":"o","status":"final","subject":{"reference":"Patient/p1"},"valueQuantity":{"value":4.2,"unit":"mmol/L"}}`
	seq := int64(0)
	var publishing time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		seq++
		ev, err := channels.NewLegacyUpdate(channels.LegacyUpdate{Seq: seq, Action: channels.ActionCreated,
			ResourceType: "Observation", ResourceID: "o", PatientIDs: []string{"p1"}, Resource: []byte(body)})
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		legacy.Publish(seq, []*channels.LegacyEvent{ev})
		publishing += time.Since(start)
		select {
		case <-round:
		case <-time.After(30 * time.Second):
			b.Fatalf("round %d: %d of %d frames arrived", seq, got.Load()%int64(n), n)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(n), "conns")
	// The fan-out itself (matching and queueing to every connection); the
	// rest of ns/op is the writes and the clients' reads.
	b.ReportMetric(float64(publishing.Microseconds())/float64(seq), "publish-µs")
	for _, ws := range conns {
		_ = ws.Close()
	}
	wg.Wait()
}
