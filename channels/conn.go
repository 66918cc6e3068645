package channels

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
)

// frame is one queued text message and the ordering tag (a change seq, or 0)
// its protocol gave it.
type frame struct {
	data []byte
	seq  int64
	at   int64 // a notification frame: when it was queued (Unix ns); 0 for other frames
}

// Conn is one websocket connection of a Hub. It has exactly two goroutines:
// a reader, which calls the Session, and a writer, which alone writes to the
// socket. Send, SendWait and Close are safe for concurrent use and never
// block on the network.
type Conn struct {
	id   uint64
	hub  *Hub
	ws   *websocket.Conn
	sess Session

	ctx    context.Context
	cancel context.CancelFunc

	mu          sync.Mutex
	queue       []frame // waiting for the writer
	spare       []frame // the writer's last batch, reused
	queuedBytes int
	closing     bool          // no more Send; the writer sends the close frame
	closeCode   int           // guarded by mu
	closeReason string        // guarded by mu
	abrupt      bool          // close without waiting for the peer's close frame
	firstUnsent int64         // seq of the first frame dropped by the close, 0 if none
	space       chan struct{} // closed by the writer when it takes the queue; lazily made
	queuedNote  int64         // queue time (Unix ns) of the oldest notification frame in queue; 0: none

	// writingNote is the queue time (Unix ns) of the oldest notification
	// frame of the batch the writer works on that is not yet written (0:
	// none). take sets it under mu; the writer moves it forward alone.
	writingNote atomic.Int64

	wake       chan struct{} // cap 1: queue, ping or close pending
	pingDue    atomic.Bool
	stop       chan struct{} // closed when the reader ends
	writerDone chan struct{}
	written    atomic.Int64 // highest seq written to the socket
	sameSeq    int          // writer only: frames tagged written.Load() written

	expiry   *time.Timer // closes the connection when its token expires; guarded by mu
	expireAt time.Time   // when expiry fires; guarded by mu
}

func newConn(h *Hub, ws *websocket.Conn, sess Session) *Conn {
	ctx, cancel := context.WithCancel(context.Background())
	return &Conn{
		id:         h.nextID.Add(1),
		hub:        h,
		ws:         ws,
		sess:       sess,
		ctx:        ctx,
		cancel:     cancel,
		wake:       make(chan struct{}, 1),
		stop:       make(chan struct{}),
		writerDone: make(chan struct{}),
	}
}

// ID is unique among the hub's connections (a counter from 1).
func (c *Conn) ID() uint64 { return c.id }

// RemoteAddr is the peer's network address.
func (c *Conn) RemoteAddr() net.Addr { return c.ws.RemoteAddr() }

// Context is cancelled when the connection closes.
func (c *Conn) Context() context.Context { return c.ctx }

// Written returns the highest seq tag of the frames written to the socket
// so far (0 if none).
func (c *Conn) Written() int64 { return c.written.Load() }

// WrittenOfLast returns how many frames tagged Written() were written
// (several frames may share a seq). Meaningful in Session.Closed, once the
// writer has stopped.
func (c *Conn) WrittenOfLast() int { return c.sameSeq }

// FirstUnsent returns the seq tag of the first frame that was queued but
// never written because the connection closed (0 if none). Meaningful in
// Session.Closed.
func (c *Conn) FirstUnsent() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.firstUnsent
}

// Send queues a text frame without blocking. seq is an ordering tag for
// Written and FirstUnsent (0 for none). It returns false when the
// connection is closing, or when the queue is full: the connection is then
// a slow consumer and is closed with 1013 "slow consumer".
func (c *Conn) Send(data []byte, seq int64) bool { return c.send(data, seq, false) }

// notify is Send for a notification frame (an event, handshake or
// heartbeat of a subscription): its wait counts in the hub's
// NotificationLag.
func (c *Conn) notify(data []byte, seq int64) bool { return c.send(data, seq, true) }

func (c *Conn) send(data []byte, seq int64, note bool) bool {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return false
	}
	if !c.roomLocked(len(data)) {
		c.closeLocked(CloseTryAgainLater, ReasonSlowConsumer, true)
		c.mu.Unlock()
		// Abort a write stuck on the stalled peer now rather than after
		// WriteTimeout; the close frame write sets its own deadline.
		_ = c.ws.NetConn().SetWriteDeadline(time.Now())
		c.hub.log.Info("websocket slow consumer disconnected", "conn", c.id, "remote", c.RemoteAddr().String())
		c.signal()
		return false
	}
	c.pushLocked(data, seq, note)
	c.mu.Unlock()
	c.signal()
	return true
}

// SendWait queues a text frame, waiting while the queue is full: the flow
// control for replays. It returns ErrShutdown when the connection closes
// and ctx.Err() when ctx is done first.
func (c *Conn) SendWait(ctx context.Context, data []byte, seq int64) error {
	return c.sendWait(ctx, data, seq, false)
}

// notifyWait is SendWait for a notification frame (see notify).
func (c *Conn) notifyWait(ctx context.Context, data []byte, seq int64) error {
	return c.sendWait(ctx, data, seq, true)
}

func (c *Conn) sendWait(ctx context.Context, data []byte, seq int64, note bool) error {
	if err := c.awaitLocked(ctx, func() bool { return c.roomLocked(len(data)) }); err != nil {
		return err
	}
	c.pushLocked(data, seq, note)
	c.mu.Unlock()
	c.signal()
	return nil
}

// awaitLocked waits until ready (called with c.mu held) holds, woken each
// time the writer takes the queue, and returns with c.mu held. On an error
// (ErrShutdown when the connection closes, ctx.Err()) c.mu is not held.
func (c *Conn) awaitLocked(ctx context.Context, ready func() bool) error {
	for {
		c.mu.Lock()
		if c.closing {
			c.mu.Unlock()
			return ErrShutdown
		}
		if ready() {
			return nil
		}
		if c.space == nil {
			c.space = make(chan struct{})
		}
		space := c.space
		c.mu.Unlock()
		select {
		case <-space:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Close sends a close frame with code and reason after the frame being
// written, drops the frames still queued and ends the connection. Later
// calls do nothing.
func (c *Conn) Close(code int, reason string) {
	c.mu.Lock()
	c.closeLocked(code, reason, false)
	c.mu.Unlock()
	c.signal()
}

// ExpireAt closes the connection with 1008 "token-expired" at t: a
// websocket must not outlive the token that authorized it. Every protocol
// calls it with the expiry of each token it accepts; the earliest time
// wins, so a connection holding bindings made with several tokens closes
// when the first of them expires. onExpire, when not nil, runs just before
// the close (for a session to record its departure). A zero t (a token
// without expiry, or authentication off) does nothing; a past t closes
// now. The timer stops when the connection ends.
func (c *Conn) ExpireAt(t time.Time, onExpire func()) {
	if t.IsZero() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing || (!c.expireAt.IsZero() && !t.Before(c.expireAt)) {
		return
	}
	if c.expiry != nil {
		c.expiry.Stop()
	}
	c.expireAt = t
	c.expiry = time.AfterFunc(max(time.Until(t), 0), func() {
		if onExpire != nil {
			onExpire()
		}
		c.Close(ClosePolicyViolation, ReasonTokenExpired)
	})
}

func (c *Conn) roomLocked(n int) bool {
	// An empty queue always takes a frame, however large.
	return len(c.queue) == 0 ||
		len(c.queue) < c.hub.cfg.SendQueue && c.queuedBytes+n <= c.hub.cfg.SendQueueBytes
}

func (c *Conn) pushLocked(data []byte, seq int64, note bool) {
	f := frame{data: data, seq: seq}
	if note {
		f.at = time.Now().UnixNano()
		if c.queuedNote == 0 {
			c.queuedNote = f.at
		}
	}
	c.queue = append(c.queue, f)
	c.queuedBytes += len(data)
}

// pendingNote returns the queue time (Unix ns) of the oldest notification
// frame handed to the connection and not yet written to its socket, 0
// when there is none.
func (c *Conn) pendingNote() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	// the batch being written was queued before anything still queued
	if w := c.writingNote.Load(); w != 0 {
		return w
	}
	return c.queuedNote
}

// nextNote returns the index of the first notification frame of fs at or
// after i, len(fs) when there is none.
func nextNote(fs []frame, i int) int {
	for i < len(fs) && fs[i].at == 0 {
		i++
	}
	return i
}

func (c *Conn) closeLocked(code int, reason string, abrupt bool) {
	if c.closing {
		return
	}
	c.closing, c.closeCode, c.closeReason, c.abrupt = true, code, reason, abrupt
	c.cancel() // a replay in progress stops now
	c.dropLocked(c.queue)
	c.queue, c.spare, c.queuedBytes, c.queuedNote = nil, nil, 0, 0
	if c.space != nil {
		close(c.space)
		c.space = nil
	}
}

// dropLocked records the first seq of frames that will never be written.
func (c *Conn) dropLocked(fs []frame) {
	if c.firstUnsent != 0 {
		return
	}
	for _, f := range fs {
		if f.seq > 0 {
			c.firstUnsent = f.seq
			return
		}
	}
}

func (c *Conn) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *Conn) requestPing() {
	c.pingDue.Store(true)
	c.signal()
}

func (c *Conn) start() {
	go c.writeLoop()
	go c.readLoop()
}

// WaitEmpty waits until the writer has taken every queued frame. It
// returns ErrShutdown when the connection closes and ctx.Err() when ctx is
// done first. A replay calls it before going live, so that live frames,
// which never wait, do not find the queue full of the replay's.
func (c *Conn) WaitEmpty(ctx context.Context) error {
	if err := c.awaitLocked(ctx, func() bool { return len(c.queue) == 0 }); err != nil {
		return err
	}
	c.mu.Unlock()
	return nil
}

// take hands the queued frames to the writer.
func (c *Conn) take() (batch []frame, closing bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return nil, true
	}
	batch = c.queue
	c.queue = c.spare[:0]
	c.spare = nil
	c.queuedBytes = 0
	c.writingNote.Store(c.queuedNote)
	c.queuedNote = 0
	if c.space != nil {
		close(c.space)
		c.space = nil
	}
	return batch, false
}

// giveBack keeps a small written batch's array for reuse (a large one is
// dropped so that an idle connection holds little).
func (c *Conn) giveBack(batch []frame) {
	if cap(batch) > 8 {
		return
	}
	clear(batch)
	c.mu.Lock()
	if !c.closing && c.spare == nil && len(c.queue) == 0 && cap(c.queue) == 0 {
		c.spare = batch[:0]
	}
	c.mu.Unlock()
}

func (c *Conn) writeLoop() {
	defer close(c.writerDone)
	cfg := &c.hub.cfg
	for {
		select {
		case <-c.wake:
		case <-c.stop:
			return
		}
		if c.pingDue.Swap(false) {
			if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(cfg.WriteTimeout)); err != nil {
				c.fail(err)
				return
			}
		}
		for {
			batch, closing := c.take()
			if closing {
				c.writeClose()
				return
			}
			if len(batch) == 0 {
				break
			}
			next := nextNote(batch, 0) // the notification frame writingNote is of
			for i, f := range batch {
				_ = c.ws.SetWriteDeadline(time.Now().Add(cfg.WriteTimeout))
				if err := c.ws.WriteMessage(websocket.TextMessage, f.data); err != nil {
					c.mu.Lock()
					c.dropLocked(batch[i:])
					c.mu.Unlock()
					c.fail(err)
					return
				}
				if i == next {
					next = nextNote(batch, i+1)
					if next < len(batch) {
						c.writingNote.Store(batch[next].at)
					} else {
						c.writingNote.Store(0)
					}
				}
				if f.seq > 0 {
					if f.seq != c.written.Load() {
						c.sameSeq = 0
					}
					c.sameSeq++
					c.written.Store(f.seq)
				}
			}
			c.giveBack(batch)
		}
	}
}

// writeClose sends the close frame, gives the peer a moment to answer with
// its own (so that it reads ours before the TCP close), then closes.
func (c *Conn) writeClose() {
	c.mu.Lock()
	code, reason, abrupt := c.closeCode, c.closeReason, c.abrupt
	c.mu.Unlock()
	cfg := &c.hub.cfg
	err := c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason),
		time.Now().Add(cfg.WriteTimeout))
	if err == nil && !abrupt {
		grace := min(time.Second, cfg.WriteTimeout)
		t := time.NewTimer(grace)
		select {
		case <-c.stop:
		case <-t.C:
		}
		t.Stop()
	}
	_ = c.ws.Close()
}

// fail ends a connection whose socket broke: closing the socket ends the
// reader, which cleans up.
func (c *Conn) fail(err error) {
	c.mu.Lock()
	c.closing = true
	c.queue, c.spare, c.queuedBytes, c.queuedNote = nil, nil, 0, 0
	c.writingNote.Store(0)
	if c.space != nil {
		close(c.space)
		c.space = nil
	}
	c.mu.Unlock()
	if !errors.Is(err, net.ErrClosed) {
		c.hub.log.Debug("websocket write failed", "conn", c.id, "error", err)
	}
	_ = c.ws.Close()
}

func (c *Conn) readLoop() {
	defer c.finish()
	cfg := &c.hub.cfg
	c.ws.SetReadLimit(cfg.ReadLimit)
	_ = c.ws.SetReadDeadline(time.Now().Add(cfg.PongTimeout))
	c.ws.SetPongHandler(func(string) error {
		return c.ws.SetReadDeadline(time.Now().Add(cfg.PongTimeout))
	})
	c.sess.Open(c)
	for {
		mt, data, err := c.ws.ReadMessage()
		if err != nil {
			if !websocket.IsCloseError(err, CloseNormal, CloseGoingAway, websocket.CloseNoStatusReceived) &&
				!errors.Is(err, net.ErrClosed) {
				c.hub.log.Debug("websocket read ended", "conn", c.id, "error", err)
			}
			return
		}
		_ = c.ws.SetReadDeadline(time.Now().Add(cfg.PongTimeout))
		if mt != websocket.TextMessage {
			c.Close(websocket.CloseUnsupportedData, "binary frames are not supported")
			continue
		}
		if !utf8.Valid(data) { // RFC 6455 §8.1: fail the connection
			c.Close(websocket.CloseInvalidFramePayloadData, "text frame is not valid UTF-8")
			continue
		}
		c.sess.Message(c.ctx, data)
	}
}

// finish runs when the reader ends: it stops the writer, closes the socket,
// runs the Closed hook and unregisters the connection.
func (c *Conn) finish() {
	c.cancel()
	c.mu.Lock()
	c.closeLocked(CloseNormal, "", true)
	if c.expiry != nil {
		c.expiry.Stop()
	}
	c.mu.Unlock()
	close(c.stop)
	_ = c.ws.Close() // unblocks a writer stuck on a stalled peer
	<-c.writerDone
	c.sess.Closed(c)
	c.hub.unregister(c)
}
