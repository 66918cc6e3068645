package channels

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// Config configures a Hub. The zero value of every field means its default.
type Config struct {
	// Logger receives connection and lifecycle messages; nil discards them.
	Logger *slog.Logger
	// ReadLimit is the largest text frame (message) a client may send, in
	// bytes (default 64 KiB). A larger one closes the connection with 1009.
	ReadLimit int64
	// ReadBufferSize is the per-connection read buffer (default 1024). It
	// is held for the connection's lifetime, so keep it small.
	ReadBufferSize int
	// WriteBufferSize is the size of the pooled write buffers (default
	// 4096). A connection holds one only while it writes.
	WriteBufferSize int
	// SendQueue is the most frames waiting to be written to one connection
	// (default 256). A connection whose queue overflows is a slow consumer:
	// it is closed with 1013 "slow consumer" and the frame is dropped.
	SendQueue int
	// SendQueueBytes bounds the bytes waiting for one connection the same
	// way (default 4 MiB).
	SendQueueBytes int
	// WriteTimeout is the deadline of every write (default 10 s). A peer
	// that does not take a frame within it is disconnected.
	WriteTimeout time.Duration
	// PingInterval is how often the server pings every connection (default
	// 25 s).
	PingInterval time.Duration
	// PongTimeout is how long a connection may stay silent (no pong, no
	// frame) before it is considered dead and closed (default 60 s; raised
	// to PingInterval + WriteTimeout if smaller).
	PongTimeout time.Duration
	// HandshakeTimeout bounds the upgrade handshake (default 10 s).
	HandshakeTimeout time.Duration
	// CheckOrigin decides whether a browser Origin may connect; nil keeps
	// gorilla/websocket's same-origin check.
	CheckOrigin func(r *http.Request) bool
}

func (c *Config) setDefaults() {
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.ReadLimit <= 0 {
		c.ReadLimit = 64 << 10
	}
	if c.ReadBufferSize <= 0 {
		c.ReadBufferSize = 1024
	}
	if c.WriteBufferSize <= 0 {
		c.WriteBufferSize = 4096
	}
	if c.SendQueue <= 0 {
		c.SendQueue = 256
	}
	if c.SendQueueBytes <= 0 {
		c.SendQueueBytes = 4 << 20
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.PingInterval <= 0 {
		c.PingInterval = 25 * time.Second
	}
	if c.PongTimeout <= 0 {
		c.PongTimeout = 60 * time.Second
	}
	if c.PongTimeout < c.PingInterval+c.WriteTimeout {
		c.PongTimeout = c.PingInterval + c.WriteTimeout
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = 10 * time.Second
	}
}

// ErrShutdown is returned by Conn.SendWait when the hub or the connection
// is closing.
var ErrShutdown = errors.New("websocket connection closed")

// Hub owns every websocket connection of the server: it upgrades requests
// for its protocols, registers the connections, pings them, and closes them
// all on Shutdown. Create it with New. Safe for concurrent use.
type Hub struct {
	cfg      Config
	log      *slog.Logger
	upgrader websocket.Upgrader

	mu     sync.RWMutex
	conns  map[*Conn]struct{}
	closed bool // guarded by mu: no new upgrades

	nextID   atomic.Uint64
	wg       sync.WaitGroup // one per connection (its reader, which waits for its writer)
	quit     chan struct{}  // closed by Shutdown: stops the pinger
	pingerWG sync.WaitGroup
	once     sync.Once
}

// New returns a running Hub (its pinger goroutine is started; Shutdown stops
// it).
func New(cfg Config) (*Hub, error) {
	cfg.setDefaults()
	h := &Hub{
		cfg:   cfg,
		log:   cfg.Logger,
		conns: make(map[*Conn]struct{}),
		quit:  make(chan struct{}),
	}
	h.upgrader = websocket.Upgrader{
		HandshakeTimeout: cfg.HandshakeTimeout,
		ReadBufferSize:   cfg.ReadBufferSize,
		WriteBufferSize:  cfg.WriteBufferSize,
		WriteBufferPool:  &sync.Pool{},
		CheckOrigin:      cfg.CheckOrigin,
	}
	h.pingerWG.Add(1)
	go h.pinger()
	return h, nil
}

// Len returns the number of open connections.
func (h *Hub) Len() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.conns)
}

// NotificationLag is the age at now of the oldest notification frame (an
// event, handshake or heartbeat of a subscription, on any protocol) handed
// to a websocket connection and not yet written to its socket, over all
// connections; 0 when every one has been written. It shows a server whose
// writers fall behind, or a peer that stopped reading.
//
// It is an operator's gauge, not a reason to refuse writes: a consumer
// too slow for its queue is already cut off (1013 "slow consumer", or the
// WriteTimeout), and one slow socket must not throttle everybody's
// writes, so the write backpressure does not count it. The cost is a
// short lock per connection: call it per scrape, not per write.
func (h *Hub) NotificationLag(now time.Time) time.Duration {
	var oldest int64
	for _, c := range h.snapshot() {
		if at := c.pendingNote(); at != 0 && (oldest == 0 || at < oldest) {
			oldest = at
		}
	}
	if oldest == 0 {
		return 0
	}
	return max(now.Sub(time.Unix(0, oldest)), 0)
}

// Handler returns the http.Handler that upgrades GET requests to websocket
// connections speaking p. After Shutdown it answers 503.
func (h *Hub) Handler(p Protocol) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.serve(w, r, p)
	})
}

func (h *Hub) serve(w http.ResponseWriter, r *http.Request, p Protocol) {
	if h.isClosed() {
		http.Error(w, ReasonShutdown, http.StatusServiceUnavailable)
		return
	}
	if !websocket.IsWebSocketUpgrade(r) {
		http.Error(w, "websocket upgrade required", http.StatusUpgradeRequired)
		return
	}
	sess, err := p.Accept(r)
	if err != nil {
		status, reason := http.StatusForbidden, "forbidden"
		if re, ok := errors.AsType[*RejectError](err); ok {
			status, reason = re.Status, re.Reason
		}
		h.log.DebugContext(r.Context(), "websocket upgrade refused", "remote", r.RemoteAddr, "error", err)
		http.Error(w, reason, status)
		return
	}
	ws, err := h.upgrader.Upgrade(w, r, nil)
	if err != nil {
		// The upgrader has already answered with an HTTP error.
		h.log.DebugContext(r.Context(), "websocket upgrade failed", "remote", r.RemoteAddr, "error", err)
		return
	}
	c := newConn(h, ws, sess)
	if !h.register(c) {
		_ = ws.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(CloseGoingAway, ReasonShutdown), time.Now().Add(h.cfg.WriteTimeout))
		_ = ws.Close()
		return
	}
	// The handler returns at once: the reader and writer goroutines own the
	// connection, so the server's (deeper) request goroutine and its
	// buffers are released.
	c.start()
}

func (h *Hub) isClosed() bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.closed
}

// register adds c unless the hub is shutting down; the WaitGroup is
// incremented under the same lock that Shutdown takes, so Shutdown's Wait
// sees every registered connection.
func (h *Hub) register(c *Conn) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.conns[c] = struct{}{}
	h.wg.Add(1)
	return true
}

func (h *Hub) unregister(c *Conn) {
	h.mu.Lock()
	delete(h.conns, c)
	h.mu.Unlock()
	h.wg.Done()
}

func (h *Hub) snapshot() []*Conn {
	h.mu.RLock()
	defer h.mu.RUnlock()
	out := make([]*Conn, 0, len(h.conns))
	for c := range h.conns {
		out = append(out, c)
	}
	return out
}

// pinger asks every connection's writer to send a ping once per
// PingInterval. One hub-wide ticker instead of a timer per connection.
func (h *Hub) pinger() {
	defer h.pingerWG.Done()
	t := time.NewTicker(h.cfg.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-h.quit:
			return
		case <-t.C:
			for _, c := range h.snapshot() {
				c.requestPing()
			}
		}
	}
}

// Shutdown refuses new upgrades, sends close 1001 "server shutting down" to
// every connection and waits until all connection goroutines have ended,
// or ctx is done (it then returns ctx.Err() and the remaining goroutines end
// within WriteTimeout). http.Server.Shutdown does not close hijacked
// connections, so call this too. Idempotent.
func (h *Hub) Shutdown(ctx context.Context) error {
	h.once.Do(func() {
		h.mu.Lock()
		h.closed = true
		h.mu.Unlock()
		close(h.quit)
		for _, c := range h.snapshot() {
			c.Close(CloseGoingAway, ReasonShutdown)
		}
	})
	done := make(chan struct{})
	go func() {
		h.wg.Wait()
		h.pingerWG.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
