package main

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// receiver is the rest-hook endpoint inside the load client, on a
// loopback port: it counts handshakes per subscription and hands the
// focus ids of event notifications to the current tracker.
type receiver struct {
	srv *http.Server
	url string

	mu         sync.Mutex
	handshakes map[string]bool
	tr         *tracker
	hsWake     chan struct{}
	bad        atomic.Int64 // requests that were not notification Bundles
	done       chan struct{}
}

func startReceiver() (*receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &receiver{url: "http://" + ln.Addr().String() + "/hook", handshakes: map[string]bool{},
		hsWake: make(chan struct{}, 1), done: make(chan struct{})}
	r.srv = &http.Server{Handler: http.HandlerFunc(r.handle), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(r.done)
		if err := r.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			r.bad.Add(1)
		}
	}()
	return r, nil
}

// close stops the receiver and waits for its goroutine.
func (r *receiver) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.srv.Shutdown(ctx); err != nil {
		_ = r.srv.Close()
	}
	<-r.done
}

// track sends the event notifications from now on to t.
func (r *receiver) track(t *tracker) {
	r.mu.Lock()
	r.tr = t
	r.mu.Unlock()
}

func (r *receiver) handle(w http.ResponseWriter, req *http.Request) {
	raw, err := io.ReadAll(req.Body)
	at := time.Now()
	if err != nil {
		r.bad.Add(1)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	n, err := parseNotice(raw)
	if err != nil {
		r.bad.Add(1)
		w.WriteHeader(http.StatusOK) // not ours to fail the server on
		return
	}
	r.mu.Lock()
	tr := r.tr
	if n.Type == "handshake" && !r.handshakes[n.Sub] {
		r.handshakes[n.Sub] = true
		select {
		case r.hsWake <- struct{}{}:
		default:
		}
	}
	r.mu.Unlock()
	if n.Type == "event-notification" && tr != nil {
		for _, id := range n.IDs {
			tr.arrive(id, at)
		}
	}
	w.WriteHeader(http.StatusOK)
}

func (r *receiver) handshakeCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.handshakes)
}

// waitHandshakes waits until n subscriptions have had their handshake,
// the timeout passes or ctx ends, and returns how many had.
func (r *receiver) waitHandshakes(ctx context.Context, n int, timeout time.Duration) int {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		if c := r.handshakeCount(); c >= n {
			return c
		}
		select {
		case <-r.hsWake:
		case <-time.After(100 * time.Millisecond):
		case <-deadline.C:
			return r.handshakeCount()
		case <-ctx.Done():
			return r.handshakeCount()
		}
	}
}
