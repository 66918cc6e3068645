package channels

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/fhirsub/fhirsub/conformance/smart"
)

// Errors a binder returns (wrapped) when a subscription cannot be bound.
var (
	// ErrSubscriptionNotFound: no such subscription.
	ErrSubscriptionNotFound = errors.New("subscription not found")
	// ErrNotWebsocket: the subscription's channel is not websocket.
	ErrNotWebsocket = errors.New("subscription does not use the websocket channel")
	// ErrBindForbidden: the caller may not see the subscription.
	ErrBindForbidden = errors.New("subscription not visible to the caller")
)

// Close reasons of the R4 and Backport subscription protocols (sent with
// ClosePolicyViolation).
const (
	ReasonInvalidToken       = "invalid-or-expired-token"
	ReasonNotFound           = "subscription-not-found"
	ReasonNotWebsocket       = "subscription-not-websocket"
	ReasonForbidden          = "forbidden"
	ReasonExpectedBind       = "expected-bind-with-token"
	ReasonAuthRequired       = "authentication-required"
	ReasonAuthTimeout        = "authentication-timeout"
	ReasonBindFailed         = "bind-failed"
	ReasonNotificationFailed = "notification-failed"
)

// bindReason maps a binder error to its close reason.
func bindReason(err error) string {
	switch {
	case errors.Is(err, ErrSubscriptionNotFound):
		return ReasonNotFound
	case errors.Is(err, ErrNotWebsocket):
		return ReasonNotWebsocket
	case errors.Is(err, ErrBindForbidden):
		return ReasonForbidden
	}
	return ReasonBindFailed
}

// Verifier verifies a bearer token (web.Authenticator implements it).
type Verifier interface {
	Verify(ctx context.Context, raw string) (*smart.Access, error)
}

// R4Binder is what the R4 protocol needs from the subscription side
// (subscriptions.WSBridge implements it).
type R4Binder interface {
	// BindR4 checks that acc may bind the websocket subscription id and
	// then calls ping with the number of each event recorded for it, on
	// the matcher's goroutine (ping never blocks), and ended once, with
	// why, when the server ends the binding (the subscription was
	// deleted, or is no longer a websocket one; nothing follows). It
	// returns the function that ends the binding, or an error wrapping
	// ErrSubscriptionNotFound, ErrNotWebsocket or ErrBindForbidden.
	BindR4(ctx context.Context, id string, acc *smart.Access, ping func(eventNumber int64), ended func(why string)) (cancel func(), err error)
}

// R4Config configures the R4 websocket protocol. Zero values mean
// defaults.
type R4Config struct {
	// Binder binds subscriptions (required).
	Binder R4Binder
	// Auth verifies bearer tokens; nil turns authentication off (every
	// caller gets smart.Full()). Do not store a nil pointer in it.
	Auth Verifier
	// Logger receives session messages; nil discards them.
	Logger *slog.Logger
	// MaxBindings is the most subscriptions one connection may bind
	// (default 20).
	MaxBindings int
	// AuthTimeout is how long a connection may stay unauthenticated when
	// authentication is on (default 10 s).
	AuthTimeout time.Duration
	// MessageRate and MessageBurst limit client messages per connection
	// (defaults 10/s and 20).
	MessageRate  float64
	MessageBurst int
}

// R4 is the R4 classic websocket protocol (path /websocket): the client
// sends "bind <id>", the server answers "bound <id>" and then sends
// "ping <id>" for every event recorded for the subscription. Create it
// with NewR4 and mount it with Hub.Handler. Safe for concurrent use.
//
// With authentication on, the bearer token comes as the access_token query
// parameter or in a first message {"type":"auth","data":{"token":"…"}}.
// The connection closes with 1008 "token-expired" when a token it
// authenticated with expires (Conn.ExpireAt).
// A bind that fails (unknown or malformed id, a channel other than
// websocket, a subscription the caller may not see, no authentication) is
// answered with a text frame "error <message>" and close 1008 with a
// reason. Other unexpected messages get an "error …" frame and the
// connection stays open. When a bound subscription is deleted the client
// gets "error Subscription/<id> was deleted: its binding ended" (or "… is
// no longer a websocket subscription …" when an update changed its
// channel); the connection stays open for its other bindings.
type R4 struct {
	cfg R4Config
	log *slog.Logger
}

var _ Protocol = (*R4)(nil)

// NewR4 checks cfg and returns the protocol.
func NewR4(cfg R4Config) (*R4, error) {
	if cfg.Binder == nil {
		return nil, errors.New("r4 websocket: binder required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.MaxBindings <= 0 {
		cfg.MaxBindings = 20
	}
	if cfg.AuthTimeout <= 0 {
		cfg.AuthTimeout = 10 * time.Second
	}
	if cfg.MessageRate <= 0 {
		cfg.MessageRate = 10
	}
	if cfg.MessageBurst <= 0 {
		cfg.MessageBurst = 20
	}
	return &R4{cfg: cfg, log: cfg.Logger}, nil
}

// Accept implements Protocol: an access_token query parameter is verified
// here (401 when invalid).
func (p *R4) Accept(r *http.Request) (Session, error) {
	s := &r4Session{p: p, bound: map[string]func(){},
		limiter: rate.NewLimiter(rate.Limit(p.cfg.MessageRate), p.cfg.MessageBurst)}
	if p.cfg.Auth == nil {
		s.access.Store(smart.Full())
		return s, nil
	}
	if tok := r.URL.Query().Get("access_token"); tok != "" {
		acc, err := p.cfg.Auth.Verify(r.Context(), tok)
		if err != nil {
			return nil, &RejectError{Status: http.StatusUnauthorized, Reason: "invalid access_token"}
		}
		s.access.Store(acc)
	}
	return s, nil
}

// r4Session is one connection of the R4 protocol. bound is touched only
// by the reader goroutine (Message, Closed).
type r4Session struct {
	p       *R4
	conn    *Conn
	access  atomic.Pointer[smart.Access]
	limiter *rate.Limiter
	bound   map[string]func()
	ended   endedSet // bindings the server ended

	timerMu sync.Mutex
	timer   *time.Timer // closes an unauthenticated connection
}

// Open implements Session.
func (s *r4Session) Open(c *Conn) {
	s.conn = c
	if acc := s.access.Load(); acc != nil {
		c.ExpireAt(expiryOf(acc), nil)
		return
	}
	s.timerMu.Lock()
	s.timer = time.AfterFunc(s.p.cfg.AuthTimeout, func() {
		if s.access.Load() == nil {
			c.Close(ClosePolicyViolation, ReasonAuthTimeout)
		}
	})
	s.timerMu.Unlock()
}

// Closed implements Session: it ends every binding.
func (s *r4Session) Closed(*Conn) {
	s.stopTimer()
	for id, cancel := range s.bound {
		cancel()
		delete(s.bound, id)
	}
}

func (s *r4Session) stopTimer() {
	s.timerMu.Lock()
	if s.timer != nil {
		s.timer.Stop()
	}
	s.timerMu.Unlock()
}

// Message implements Session.
func (s *r4Session) Message(ctx context.Context, data []byte) {
	if !s.limiter.Allow() {
		s.send("error rate limited: more than %g messages per second", s.p.cfg.MessageRate)
		return
	}
	req, err := parseR4Message(data)
	if err != nil {
		if errors.Is(err, errUnexpected) {
			s.send("error %v", err)
			return
		}
		s.refuse(ReasonNotFound, err.Error())
		return
	}
	switch req.kind {
	case r4Auth:
		s.auth(ctx, req.token)
	case r4Bind:
		s.bind(ctx, req.id)
	}
}

func (s *r4Session) auth(ctx context.Context, token string) {
	if s.p.cfg.Auth == nil {
		return // authentication is off: nothing to check
	}
	acc, err := s.p.cfg.Auth.Verify(ctx, token)
	if err != nil {
		s.refuse(ReasonInvalidToken, "invalid token")
		return
	}
	s.access.Store(acc)
	s.stopTimer()
	s.conn.ExpireAt(expiryOf(acc), nil)
}

func (s *r4Session) bind(ctx context.Context, id string) {
	acc := s.access.Load()
	if acc == nil {
		s.refuse(ReasonAuthRequired, "authenticate before bind: access_token query parameter or {\"type\":\"auth\",\"data\":{\"token\":…}}")
		return
	}
	s.ended.forget(s.bound)
	if _, ok := s.bound[id]; ok {
		s.send("bound %s", id)
		return
	}
	if len(s.bound) >= s.p.cfg.MaxBindings {
		s.send("error too many bindings: a connection may bind at most %d subscriptions", s.p.cfg.MaxBindings)
		return
	}
	conn, ping := s.conn, []byte("ping "+id)
	ended := func(why string) {
		s.ended.add(id)
		conn.Send([]byte("error "+why), 0)
	}
	cancel, err := s.p.cfg.Binder.BindR4(ctx, id, acc, func(int64) { conn.notify(ping, 0) }, ended)
	if err != nil {
		s.p.log.Debug("r4 bind refused", "conn", conn.ID(), "subscription", id, "err", err)
		s.refuse(bindReason(err), fmt.Sprintf("bind %s: %v", id, cleanErr(err)))
		return
	}
	s.bound[id] = cancel
	s.send("bound %s", id)
}

// refuse sends an error frame and closes with 1008 and reason.
func (s *r4Session) refuse(reason, msg string) {
	sendThenClose(s.conn, fmt.Appendf(nil, "error %s", msg), ClosePolicyViolation, reason)
}

// lastFrameTag tags a frame whose write sendThenClose waits for.
const lastFrameTag = int64(1) << 62

// sendThenClose queues a last frame, waits (at most a second, on the
// reader goroutine) until the writer has written it — Close drops the
// frames still queued — and closes the connection.
func sendThenClose(c *Conn, data []byte, code int, reason string) {
	if c.Send(data, lastFrameTag) {
		deadline := time.Now().Add(time.Second)
		for c.Written() < lastFrameTag && c.Context().Err() == nil && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
	}
	c.Close(code, reason)
}

func (s *r4Session) send(format string, args ...any) {
	s.conn.Send(fmt.Appendf(nil, format, args...), 0)
}

// cleanErr keeps the sentinel's text for the known bind errors, so that no
// internal detail reaches the client.
func cleanErr(err error) error {
	for _, e := range []error{ErrSubscriptionNotFound, ErrNotWebsocket, ErrBindForbidden} {
		if errors.Is(err, e) {
			return e
		}
	}
	return errors.New("bind failed")
}
