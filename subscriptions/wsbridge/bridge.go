// Package wsbridge connects the subscription pipeline to the websocket
// protocols of package channels: it turns recorded events into R4 pings
// and Backport notification Bundles on the sockets bound on this node,
// and issues the tokens of $get-ws-binding-token. It is the one part of
// the subscription tree that adapts to channels' Binder types.
package wsbridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fhirsub/fhirsub/channels"
	"github.com/fhirsub/fhirsub/conformance/smart"
	"github.com/fhirsub/fhirsub/fhirstore"
	"github.com/fhirsub/fhirsub/subscriptions"
)

// Pipeline is what the bridge needs of the subscription pipeline
// (*subscriptions.Manager implements it).
type Pipeline interface {
	// Subscription returns the current state of a subscription.
	Subscription(id string) (*subscriptions.Subscription, bool)
	// Subscriptions returns every known subscription.
	Subscriptions() []*subscriptions.Subscription
	// Listen registers fn for the events recorded for a subscription.
	Listen(id string, fn func(subscriptions.Recorded)) (cancel func())
	// State returns a subscription's delivery state (event count).
	State(ctx context.Context, id string) (fhirstore.SubscriptionState, error)
	// Notification builds a notification Bundle.
	Notification(ctx context.Context, s *subscriptions.Subscription, n subscriptions.Notice) (*subscriptions.Bundle, error)
	// EventsAfter returns the retained events numbered after after.
	EventsAfter(ctx context.Context, id string, after int64, limit int) ([]fhirstore.Event, error)
	// ActivateBound makes a requested websocket subscription active (a
	// socket bound to it) and returns it as now known.
	ActivateBound(ctx context.Context, s *subscriptions.Subscription) (*subscriptions.Subscription, error)
}

// Config configures a Bridge. Zero values mean the defaults given.
type Config struct {
	// Pipeline is the subscription pipeline (required).
	Pipeline Pipeline
	// Tokens issues the tokens of $get-ws-binding-token (required).
	Tokens *channels.BindingTokens
	// BackportURL is the websocket-url $get-ws-binding-token returns
	// (required unless BaseURL is given).
	BackportURL string
	// BaseURL is the server's FHIR base: the default BackportURL is it
	// with ws/wss and the path /ws/subscriptions.
	BaseURL string
	// Workers is the number of goroutines that build the Backport Bundles
	// (default 4).
	Workers int
	// MaxPending is the most events waiting to be sent on one binding
	// (default 1000); beyond it the connection is closed as a slow
	// consumer (1013) and the client catches up with $events.
	MaxPending int
	// ReplayLimit is the most events sent on a bind for the events
	// recorded while it was being set up (default 1000).
	ReplayLimit int
	// HeartbeatTick is how often due heartbeats are looked for (default
	// 1 s).
	HeartbeatTick time.Duration
	// Logger receives failures (default: discard).
	Logger *slog.Logger
}

// Bridge connects the subscription pipeline to the websocket protocols of
// package channels: it implements channels.R4Binder (ping per recorded event),
// channels.BackportBinder (handshake, event-notification and heartbeat
// Bundles) and issues the tokens of $get-ws-binding-token (the web
// package's WSBindingIssuer). Create it with New; its goroutines
// (Workers Bundle builders and a heartbeat ticker) stop on Shutdown.
//
// Listen callbacks run on the matcher goroutine and never block: R4 pings
// go straight to the connection's queue, Backport events are appended to
// the binding's bounded pending list and a worker builds their Bundles.
type Bridge struct {
	m   Pipeline
	cfg Config
	log *slog.Logger
	url string

	mu       sync.Mutex
	bindings map[*wsBinding]struct{} // live Backport bindings

	qmu   sync.Mutex
	queue []*wsBinding
	wake  chan struct{}

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

var (
	_ channels.R4Binder       = (*Bridge)(nil)
	_ channels.BackportBinder = (*Bridge)(nil)
)

// New returns a running bridge.
func New(cfg Config) (*Bridge, error) {
	if cfg.Pipeline == nil {
		return nil, errors.New("websocket bridge: pipeline required")
	}
	if cfg.BackportURL == "" && cfg.BaseURL == "" {
		return nil, errors.New("websocket bridge: base URL required")
	}
	if cfg.Tokens == nil {
		return nil, errors.New("websocket bridge: binding tokens required")
	}
	cfg.Workers = cmpOr(cfg.Workers, 4)
	cfg.MaxPending = cmpOr(cfg.MaxPending, 1000)
	cfg.ReplayLimit = cmpOr(cfg.ReplayLimit, 1000)
	cfg.HeartbeatTick = cmpOr(cfg.HeartbeatTick, time.Second)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	url := cfg.BackportURL
	if url == "" {
		url = WebsocketURL(cfg.BaseURL, "/ws/subscriptions")
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &Bridge{
		m: cfg.Pipeline, cfg: cfg, log: cfg.Logger.With("component", "wsbridge"), url: url,
		bindings: map[*wsBinding]struct{}{},
		wake:     make(chan struct{}, 1),
		ctx:      ctx, cancel: cancel,
	}
	b.wg.Add(cfg.Workers + 1)
	for range cfg.Workers {
		go func() {
			defer b.wg.Done()
			b.workLoop()
		}()
	}
	go func() {
		defer b.wg.Done()
		b.heartbeatLoop()
	}()
	return b, nil
}

// WebsocketURL turns an http(s) base URL into the ws(s) URL of path.
func WebsocketURL(base, path string) string {
	base = strings.TrimRight(base, "/")
	switch {
	case strings.HasPrefix(base, "https://"):
		base = "wss://" + strings.TrimPrefix(base, "https://")
	case strings.HasPrefix(base, "http://"):
		base = "ws://" + strings.TrimPrefix(base, "http://")
	}
	return base + path
}

// Shutdown stops the workers and the heartbeat ticker and waits for them,
// or until ctx ends. Call it after the hub's Shutdown. Idempotent.
func (b *Bridge) Shutdown(ctx context.Context) error {
	b.cancel()
	done := make(chan struct{})
	go func() {
		b.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// check finds a subscription that acc may bind: one whose events it may
// read (ReadsEvents, the decision of $events).
func (b *Bridge) check(id string, acc *smart.Access) (*subscriptions.Subscription, error) {
	s, ok := b.m.Subscription(id)
	if !ok {
		//lint:ignore ST1005 the message starts with a FHIR reference, whose type is capitalised
		return nil, fmt.Errorf("Subscription/%s: %w", id, channels.ErrSubscriptionNotFound)
	}
	if s.ChannelType != subscriptions.ChannelWebsocket {
		//lint:ignore ST1005 the message starts with a FHIR reference, whose type is capitalised
		return nil, fmt.Errorf("Subscription/%s: %w", id, channels.ErrNotWebsocket)
	}
	if acc == nil || !subscriptions.ReadsEvents(acc, s) {
		//lint:ignore ST1005 the message starts with a FHIR reference, whose type is capitalised
		return nil, fmt.Errorf("Subscription/%s: %w", id, channels.ErrBindForbidden)
	}
	return s, nil
}

// BindR4 implements channels.R4Binder.
func (b *Bridge) BindR4(ctx context.Context, id string, acc *smart.Access, ping func(int64), ended func(why string)) (func(), error) {
	if _, err := b.check(id, acc); err != nil {
		return nil, err
	}
	stop := b.m.Listen(id, func(r subscriptions.Recorded) {
		if r.Ended != "" {
			ended(r.Ended)
			return
		}
		for _, ev := range r.Events {
			ping(ev.Number)
		}
	})
	if err := b.stillThere(id); err != nil {
		stop()
		return nil, err
	}
	return stop, nil
}

// stillThere closes the window between a bind's check and its Listen: a
// subscription deleted in between ended its listeners before this one was
// added, so the bind must fail as if the check had come after.
func (b *Bridge) stillThere(id string) error {
	if _, ok := b.m.Subscription(id); !ok {
		//lint:ignore ST1005 the message starts with a FHIR reference, whose type is capitalised
		return fmt.Errorf("Subscription/%s: %w", id, channels.ErrSubscriptionNotFound)
	}
	return nil
}

// BindingToken answers $get-ws-binding-token: a token for the websocket
// subscriptions ids (none: every one whose events acc may read) bound to
// acc. Failures are *subscriptions.Error (404 unknown, 422 not websocket, 403 when acc
// may not read the subscription's events, as $events).
func (b *Bridge) BindingToken(ctx context.Context, acc *smart.Access, ids []string) (channels.BindingToken, error) {
	var out channels.BindingToken
	if acc == nil {
		return out, &subscriptions.Error{Status: http.StatusForbidden, Code: "forbidden", Message: "no access"}
	}
	var err error
	if len(ids) == 0 {
		if ids = b.bindable(acc); len(ids) == 0 {
			return out, &subscriptions.Error{Status: http.StatusNotFound, Code: "not-found", Message: "no websocket subscription visible to the caller"}
		}
	} else {
		ids = slices.Compact(slices.Sorted(slices.Values(ids)))
		for _, id := range ids {
			if _, err := b.check(id, acc); err != nil {
				return out, bindError(id, err)
			}
		}
	}
	if len(ids) > channels.MaxTokenSubscriptions {
		return out, &subscriptions.Error{Status: http.StatusBadRequest, Code: "too-costly", Element: "id",
			Message: fmt.Sprintf("a token binds at most %d subscriptions, %d asked", channels.MaxTokenSubscriptions, len(ids))}
	}
	tok, exp, err := b.cfg.Tokens.Issue(acc, ids)
	if err != nil {
		return out, err
	}
	return channels.BindingToken{Token: tok, Expires: exp, Subscriptions: ids, URL: b.url}, nil
}

// bindable lists, sorted, the websocket subscriptions (not off) whose
// events acc may read.
func (b *Bridge) bindable(acc *smart.Access) []string {
	var ids []string
	for _, s := range b.m.Subscriptions() {
		if s.ChannelType == subscriptions.ChannelWebsocket && s.Status != subscriptions.StatusOff && subscriptions.ReadsEvents(acc, s) {
			ids = append(ids, s.ID)
		}
	}
	slices.Sort(ids)
	return ids
}

// bindError turns a check failure into the operation's *subscriptions.Error.
func bindError(id string, err error) error {
	switch {
	case errors.Is(err, channels.ErrSubscriptionNotFound):
		return &subscriptions.Error{Status: http.StatusNotFound, Code: "not-found", Message: fmt.Sprintf("Subscription/%s not found", id)}
	case errors.Is(err, channels.ErrNotWebsocket):
		return &subscriptions.Error{Status: http.StatusUnprocessableEntity, Code: "invalid", Element: "id",
			Message: fmt.Sprintf("Subscription/%s does not use the websocket channel", id)}
	case errors.Is(err, channels.ErrBindForbidden):
		return &subscriptions.Error{Status: http.StatusForbidden, Code: "forbidden",
			Message: fmt.Sprintf("Subscription/%s is not visible to the caller", id)}
	}
	return err
}
