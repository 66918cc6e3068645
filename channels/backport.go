package channels

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/fhirsub/fhirsub/conformance/smart"
)

// Sink receives the frames of one binding. Send never blocks (a full
// queue closes the connection as a slow consumer). End tells the client
// that the server ended the binding (its subscription was deleted): no
// frame of it follows, and the connection stays open for its others.
type Sink interface {
	Send(data []byte, seq int64) bool
	Close(code int, reason string)
	End(reason string)
}

// bindingSink is the Sink of one binding of a connection: its frames are
// notification Bundles, which count in the hub's NotificationLag.
type bindingSink struct {
	c     *Conn
	id    string
	ended *endedSet
}

// Send implements Sink.
func (s bindingSink) Send(data []byte, seq int64) bool { return s.c.notify(data, seq) }

// Close implements Sink.
func (s bindingSink) Close(code int, reason string) { s.c.Close(code, reason) }

// End implements Sink: an error frame of code "subscription-deleted"
// naming the subscription.
func (s bindingSink) End(reason string) {
	s.ended.add(s.id)
	s.c.Send(controlFrame("error", map[string]any{"code": "subscription-deleted", "message": reason,
		"subscription": "Subscription/" + s.id}), 0)
}

// BackportBinder is what the Backport protocol needs from the subscription
// side (subscriptions.WSBridge implements it).
type BackportBinder interface {
	// BindBackport checks that acc may bind the websocket subscription id,
	// queues its handshake Bundle on sink and from then on its
	// event-notification Bundles (no event recorded after the bind is
	// lost) and heartbeat Bundles. It returns the function that ends the
	// binding, or an error wrapping ErrSubscriptionNotFound,
	// ErrNotWebsocket or ErrBindForbidden.
	BindBackport(ctx context.Context, id string, acc *smart.Access, sink Sink) (cancel func(), err error)
}

// BindingVerifier verifies binding tokens (*BindingTokens implements it).
type BindingVerifier interface {
	Verify(raw string) (*BindingClaims, error)
	VerifyIgnoringExpiry(raw string) (*BindingClaims, error)
}

// BackportConfig configures the Backport websocket protocol. Zero values
// mean defaults.
type BackportConfig struct {
	// Binder binds subscriptions (required).
	Binder BackportBinder
	// Tokens verifies the binding tokens (required).
	Tokens BindingVerifier
	// Logger receives session messages; nil discards them.
	Logger *slog.Logger
	// MaxBindings is the most subscriptions one connection may bind
	// (default 20).
	MaxBindings int
	// MessageRate and MessageBurst limit client messages per connection
	// (defaults 10/s and 20).
	MessageRate  float64
	MessageBurst int
	// BindTimeout is how long a connection may stay without a binding
	// before it is closed with 1008 "authentication-timeout" (default
	// 10 s, like the R4 protocol's AuthTimeout).
	BindTimeout time.Duration
}

// Backport is the websocket protocol of the Subscriptions R5 Backport IG
// (path /ws/subscriptions). A client gets a token from
// $get-ws-binding-token and sends it in any of
//
//	bind-with-token <token>
//	bind-with-token: <token>
//	{"type":"bind-with-token","payload":{"token":"<token>"}}
//
// The server then sends, as text frames, one handshake Bundle per
// subscription of the token, then event-notification Bundles as events
// are recorded and heartbeat Bundles at each subscription's
// backport-heartbeat-period (when it has one) — the Bundles rest-hook
// sends. unbind-from-token (the same three forms) ends the bindings of a
// token (an expired but genuine token is accepted) and is answered with
// {"type":"unbound","payload":{"subscriptions":["Subscription/1"]}};
// {"type":"ping"} is answered with {"type":"pong"}. One connection may
// bind several tokens, up to MaxBindings subscriptions. When a bound
// subscription is deleted (or an update moves it to another channel) its
// binding ends with
// {"type":"error","payload":{"code":"subscription-deleted","subscription":"Subscription/1",…}}
// (no heartbeat of it follows); the connection stays open for the others.
//
// The connection closes with 1008 "token-expired" when the bearer token
// that obtained a binding token it bound with expires (the binding token
// carries that expiry, BindingClaims.BearerExpires). A connection that
// binds nothing within BindTimeout is closed with 1008
// "authentication-timeout".
//
// A forged, malformed or expired token closes the connection with 1008
// "invalid-or-expired-token"; an unknown subscription with
// "subscription-not-found" (also "subscription-not-websocket",
// "forbidden"); any other message with "expected-bind-with-token".
type Backport struct {
	cfg BackportConfig
	log *slog.Logger
}

var _ Protocol = (*Backport)(nil)

// NewBackport checks cfg and returns the protocol.
func NewBackport(cfg BackportConfig) (*Backport, error) {
	switch {
	case cfg.Binder == nil:
		return nil, errors.New("backport websocket: binder required")
	case cfg.Tokens == nil:
		return nil, errors.New("backport websocket: token verifier required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.MaxBindings <= 0 {
		cfg.MaxBindings = 20
	}
	if cfg.MessageRate <= 0 {
		cfg.MessageRate = 10
	}
	if cfg.MessageBurst <= 0 {
		cfg.MessageBurst = 20
	}
	if cfg.BindTimeout <= 0 {
		cfg.BindTimeout = 10 * time.Second
	}
	return &Backport{cfg: cfg, log: cfg.Logger}, nil
}

// Accept implements Protocol: the token travels in the first message, so
// every upgrade is accepted.
func (p *Backport) Accept(*http.Request) (Session, error) {
	return &backportSession{p: p, bound: map[string]func(){},
		limiter: rate.NewLimiter(rate.Limit(p.cfg.MessageRate), p.cfg.MessageBurst)}, nil
}

// backportSession is one connection of the Backport protocol; its fields
// are touched only by the reader goroutine.
type backportSession struct {
	p       *Backport
	conn    *Conn
	limiter *rate.Limiter
	bound   map[string]func()
	ended   endedSet // bindings the server ended

	everBound atomic.Bool // a bind succeeded: the bind timer is moot
	timer     *time.Timer // closes a connection that never binds
}

// Open implements Session: a connection must bind within BindTimeout.
func (s *backportSession) Open(c *Conn) {
	s.conn = c
	s.timer = time.AfterFunc(s.p.cfg.BindTimeout, func() {
		if !s.everBound.Load() {
			c.Close(ClosePolicyViolation, ReasonAuthTimeout)
		}
	})
}

// Closed implements Session: it ends every binding.
func (s *backportSession) Closed(*Conn) {
	if s.timer != nil {
		s.timer.Stop()
	}
	for id, cancel := range s.bound {
		cancel()
		delete(s.bound, id)
	}
}

// Message implements Session.
func (s *backportSession) Message(ctx context.Context, data []byte) {
	if !s.limiter.Allow() {
		s.sendError("rate-limited", fmt.Sprintf("more than %g messages per second", s.p.cfg.MessageRate))
		return
	}
	req, err := parseBackportMessage(data)
	if err != nil {
		s.conn.Close(ClosePolicyViolation, ReasonExpectedBind)
		return
	}
	switch req.kind {
	case bpPing:
		s.conn.Send([]byte(`{"type":"pong"}`), 0)
	case bpBind:
		s.bind(ctx, req.token)
	case bpUnbind:
		s.unbind(req.token)
	}
}

func (s *backportSession) bind(ctx context.Context, token string) {
	claims, err := s.p.cfg.Tokens.Verify(token)
	if err != nil {
		s.p.log.Debug("binding token refused", "conn", s.conn.ID(), "err", err)
		s.conn.Close(ClosePolicyViolation, ReasonInvalidToken)
		return
	}
	s.ended.forget(s.bound)
	var ids []string
	for _, id := range claims.Subscriptions {
		if _, ok := s.bound[id]; !ok && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	if len(s.bound)+len(ids) > s.p.cfg.MaxBindings {
		s.sendError("too-many-bindings", fmt.Sprintf("a connection may bind at most %d subscriptions", s.p.cfg.MaxBindings))
		return
	}
	// Armed before binding: a bearer that expired meanwhile closes the
	// connection before any notification is queued.
	s.conn.ExpireAt(claims.BearerExpires, nil)
	for _, id := range ids {
		cancel, err := s.p.cfg.Binder.BindBackport(ctx, id, claims.Access, bindingSink{s.conn, id, &s.ended})
		if err != nil {
			s.p.log.Debug("backport bind refused", "conn", s.conn.ID(), "subscription", id, "err", err)
			s.conn.Close(ClosePolicyViolation, bindReason(err))
			return
		}
		s.bound[id] = cancel
		s.everBound.Store(true)
	}
}

func (s *backportSession) unbind(token string) {
	claims, err := s.p.cfg.Tokens.VerifyIgnoringExpiry(token)
	if err != nil {
		s.conn.Close(ClosePolicyViolation, ReasonInvalidToken)
		return
	}
	refs := []string{}
	for _, id := range claims.Subscriptions {
		if cancel, ok := s.bound[id]; ok {
			cancel()
			delete(s.bound, id)
			refs = append(refs, "Subscription/"+id)
		}
	}
	s.conn.Send(controlFrame("unbound", map[string]any{"subscriptions": refs}), 0)
}

func (s *backportSession) sendError(code, msg string) {
	s.conn.Send(controlFrame("error", map[string]any{"code": code, "message": msg}), 0)
}

// controlFrame encodes {"type":typ,"payload":payload} with type first.
func controlFrame(typ string, payload map[string]any) []byte {
	b, _ := json.Marshal(struct {
		Type    string         `json:"type"`
		Payload map[string]any `json:"payload"`
	}{typ, payload})
	return b
}
