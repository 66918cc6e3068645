package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"

	"github.com/fhirsub/fhirsub/channels"
	"github.com/fhirsub/fhirsub/fhirstore"
	"github.com/fhirsub/fhirsub/subscriptions"
	legacyfeed "github.com/fhirsub/fhirsub/subscriptions/legacy"
	"github.com/fhirsub/fhirsub/subscriptions/wsbridge"
	"github.com/fhirsub/fhirsub/topics"
	"github.com/fhirsub/fhirsub/web"
	"github.com/fhirsub/fhirsub/web/ui"
)

// app is one running server: the store, the notification pipeline, the
// websocket hub and the HTTP server, wired together. It owns every
// goroutine it starts and shutdown waits for all of them.
type app struct {
	log       *slog.Logger
	metrics   *metrics // the Prometheus registry behind /metrics (metrics.go)
	store     fhirstore.Store
	storeName string
	hub       *channels.Hub
	legacy    *channels.Legacy // the legacy JSON protocol
	feed      *legacyfeed.Feed // its feed, a tap of the matcher
	subHook   *subscriptions.SubscriptionHook
	http      *http.Server
	baseURL   string
	authOn    bool // a bearer token is required (the start-up banner says how to get one)
	serveErr  chan error

	// stops run in reverse order on shutdown (and on a failed start).
	stops []func(context.Context) error
}

// onStop registers a step of shutdown; steps run last-registered first.
func (a *app) onStop(f func(context.Context) error) { a.stops = append(a.stops, f) }

// start opens the store, starts the pipeline, binds the listener and serves
// in the background. The caller must call shutdown.
func start(ctx context.Context, cfg *config, log *slog.Logger) (a *app, err error) {
	a = &app{log: log, serveErr: make(chan error, 1), metrics: newMetrics(log)}
	defer func() {
		if err != nil {
			_ = a.shutdown(context.Background())
			a = nil
		}
	}()
	// Authentication first: a bad auth setting must not leave a migrated
	// store behind.
	auth, err := cfg.Auth.authenticator(ctx, cfg.Addr, log)
	if err != nil {
		return a, err
	}
	a.authOn = auth != nil
	a.store, a.storeName, err = openStore(ctx, cfg, log, a.metrics.writerObserver)
	if err != nil {
		return a, err
	}
	a.onStop(func(context.Context) error { return a.store.Close() })
	if err := a.startDebug(cfg, log); err != nil {
		return a, err
	}

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return a, fmt.Errorf("listen: %w", err)
	}
	a.onStop(func(context.Context) error {
		if a.http == nil {
			return ln.Close()
		}
		return nil
	})
	a.baseURL = cfg.BaseURL
	if a.baseURL == "" {
		a.baseURL = baseURLFor(ln.Addr())
	}

	if err := a.newLegacy(cfg, auth, log); err != nil {
		return a, err
	}
	mgr, err := a.startSubscriptions(ctx, cfg, log)
	if err != nil {
		return a, err
	}
	if err := a.feed.Start(ctx); err != nil {
		return a, fmt.Errorf("start the legacy feed: %w", err)
	}
	handlers, bridge, err := a.startWebsockets(ctx, cfg, mgr, auth, log)
	if err != nil {
		return a, err
	}
	a.metrics.observe(mgr, a.hub)
	srv, err := web.New(web.Config{
		Store:           a.metrics.store(a.store),
		BaseURL:         a.baseURL,
		MaxBodyBytes:    cfg.MaxBodyBytes,
		Logger:          log,
		SoftwareVersion: buildVersion(),
		Handlers:        handlers,
		Auth:            auth,
		Interceptors: map[string]web.Interceptor{
			"Subscription":      mgr.SubscriptionInterceptor(),
			"SubscriptionTopic": mgr.TopicInterceptor(),
		},
		ExtraTypes:    []string{"SubscriptionTopic"},
		Subscriptions: mgr,
		WSBinding:     bridge,
		Metrics:       a.metrics.handler(),
		Backpressure:  lagGate{lag: mgr, bound: cfg.MaxNotificationLag},
		Readiness: func(context.Context) map[string]any {
			if skipped := mgr.Stats().Skipped; len(skipped) > 0 {
				return map[string]any{"skipped_changes": skipped}
			}
			return nil
		},
		ConditionalDeleteMultiple: cfg.ConditionalDeleteMultiple,
		CORSOrigins:               cfg.CORSOrigins,
	})
	if err != nil {
		return a, err
	}
	// No WriteTimeout: answers are bounded by the store and the websocket
	// upgrades clear the deadlines once hijacked.
	a.http = &http.Server{Handler: srv, ReadHeaderTimeout: cfg.ReadHeaderTimeout, ReadTimeout: cfg.ReadTimeout,
		IdleTimeout: cfg.IdleTimeout, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	go func() {
		if err := a.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.serveErr <- err
		}
		close(a.serveErr)
	}()
	a.onStop(func(ctx context.Context) error {
		err := a.http.Shutdown(ctx)
		for range a.serveErr { // wait for the serving goroutine
		}
		return err
	})
	log.Info("serving", "addr", ln.Addr().String(), "base", a.baseURL, "store", a.storeName)
	return a, nil
}

// startSubscriptions starts the subscription manager: it stores the
// built-in topics, loads every topic and subscription, and runs the matcher
// (the one tail of the change feed, which also feeds the legacy channel),
// the deliverers and the heartbeat scheduler.
func (a *app) startSubscriptions(ctx context.Context, cfg *config, log *slog.Logger) (*subscriptions.Manager, error) {
	events, ok := a.store.(fhirstore.EventStore)
	if !ok {
		return nil, fmt.Errorf("the %s store cannot keep subscription events yet", a.storeName)
	}
	rh, err := channels.NewRestHook(channels.RestHookConfig{Allow: cfg.RestHookAllow, MaxTimeout: cfg.RestHookMaxTime, Logger: log.With("component", "resthook")})
	if err != nil {
		return nil, err
	}
	a.onStop(func(context.Context) error { return rh.Close() })
	mgr, err := subscriptions.New(subscriptions.Config{
		Store: a.store, Events: events, Sender: hookSender{a.metrics.sender(rh)}, Topics: topics.NewRegistry(),
		BaseURL: a.baseURL, Logger: log,
		MaxFailures: cfg.MaxFailures, RetryBase: cfg.RetryBase, RetryMax: cfg.RetryMax,
		Timeout: cfg.RestHookTimeout, MaxTimeout: cfg.RestHookMaxTime, Retention: cfg.EventRetention, Workers: cfg.DeliveryWorkers,
		Cluster: a.cluster(cfg),
		Taps:    []subscriptions.Tap{a.feed},

		MaxPerOwner: cfg.MaxSubscriptionsPerOwner,

		// An endpoint at a loopback, private or link-local address literal
		// is refused at create, not on every delivery.
		ValidateEndpoint: rh.ValidateEndpoint,
	})
	if err != nil {
		return nil, err
	}
	a.subHook = mgr.SubscriptionInterceptor() // the legacy feed's redaction
	if err := mgr.Run(context.WithoutCancel(ctx)); err != nil {
		return nil, fmt.Errorf("start subscriptions: %w", err)
	}
	a.onStop(mgr.Shutdown)
	return mgr, nil
}

// newLegacy makes the legacy JSON protocol and its feed, which the
// matcher feeds (subscriptions.Tap) once started.
func (a *app) newLegacy(cfg *config, auth *web.Authenticator, log *slog.Logger) error {
	var verifier channels.Verifier
	if auth != nil { // a nil *Authenticator in the interface would not be nil
		verifier = auth
	}
	var positions channels.LegacyPositions
	if events, ok := a.store.(fhirstore.EventStore); ok {
		positions = legacyfeed.NewPositions(events)
	}
	proto, err := channels.NewLegacy(channels.LegacyConfig{
		Logger:    log.With("component", "legacy"),
		Verifier:  verifier,
		Positions: positions,
		Heartbeat: cfg.LegacyHeartbeat,
		Replayer: channels.LegacyReplayFunc(func(ctx context.Context, after, upTo int64) ([]*channels.LegacyEvent, error) {
			return a.feed.Replay(ctx, after, upTo)
		}),
	})
	if err != nil {
		return err
	}
	feed, err := legacyfeed.New(legacyfeed.Config{Store: a.store, Sink: proto, Logger: log,
		Redact: func(typ string, body []byte) []byte {
			if typ == "Subscription" {
				return a.subHook.Redact(body) // set before the Manager runs
			}
			return body
		}})
	if err != nil {
		return err
	}
	a.legacy, a.feed = proto, feed
	a.onStop(feed.Shutdown)
	return nil
}

// startWebsockets starts the websocket hub and the bridge of the two FHIR
// websocket protocols, and returns the handlers
// to mount and the bridge (which issues $get-ws-binding-token tokens):
//
//	/ws                the legacy JSON channel, extended dialect (DESIGN.md §5)
//	/api/ws            the legacy JSON channel, original MedGenEMR dialect
//	/api/ws/{client_id}  (the same, reconnecting under a known client id)
//	/websocket         R4 classic bind / bound / ping
//	/ws/subscriptions  Backport bind-with-token
//
// With authentication on, every protocol checks the caller: a bearer token
// on /ws, /api/ws and /websocket (access_token or token query parameter,
// or a first message), a binding token on /ws/subscriptions.
func (a *app) startWebsockets(ctx context.Context, cfg *config, mgr *subscriptions.Manager, auth *web.Authenticator, log *slog.Logger) (map[string]http.Handler, *wsbridge.Bridge, error) {
	var verifier channels.Verifier
	if auth != nil { // a nil *Authenticator in the interface would not be nil
		verifier = auth
	}
	hub, err := channels.New(channels.Config{Logger: log.With("component", "websocket"),
		CheckOrigin: web.Origins(cfg.CORSOrigins).CheckWebsocket})
	if err != nil {
		return nil, nil, err
	}
	a.hub = hub
	proto := a.legacy

	tokens, err := channels.NewBindingTokens(channels.BindingTokensConfig{Secret: []byte(cfg.WSBindingSecret), TTL: cfg.WSBindingTTL})
	if err != nil {
		return nil, nil, fmt.Errorf("ws-binding: %w", err)
	}
	bridge, err := wsbridge.New(wsbridge.Config{Pipeline: mgr, Tokens: tokens, BaseURL: a.baseURL, Logger: log})
	if err != nil {
		return nil, nil, err
	}
	a.onStop(bridge.Shutdown)
	r4, err := channels.NewR4(channels.R4Config{Binder: bridge, Auth: verifier, Logger: log.With("component", "r4-websocket")})
	if err != nil {
		return nil, nil, err
	}
	backport, err := channels.NewBackport(channels.BackportConfig{Binder: bridge, Tokens: tokens, Logger: log.With("component", "backport-websocket")})
	if err != nil {
		return nil, nil, err
	}

	// The hub stops before the bridge and the feed: sockets get 1001 and
	// replays end first.
	a.onStop(hub.Shutdown)
	original := hub.Handler(proto.Original("/api/ws"))
	handlers := map[string]http.Handler{
		"/ws":               hub.Handler(proto),
		"/api/ws":           original,
		"/api/ws/*":         original,
		"/websocket":        hub.Handler(r4),
		"/ws/subscriptions": hub.Handler(backport),
	}
	dash, err := dashboardOptions(cfg, auth != nil, log)
	if err != nil {
		return nil, nil, err
	}
	for _, p := range ui.Paths {
		handlers[p] = ui.Handler(dash)
	}
	return handlers, bridge, nil
}

// shutdown stops accepting requests, waits for in-flight ones, closes the
// websockets (1001), stops the pipeline and closes the store, in that order.
func (a *app) shutdown(ctx context.Context) error {
	var errs []error
	for i := len(a.stops) - 1; i >= 0; i-- {
		if err := a.stops[i](ctx); err != nil {
			errs = append(errs, err)
		}
	}
	a.stops = nil
	return errors.Join(errs...)
}
