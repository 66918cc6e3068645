package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"

	"github.com/labstack/echo/v4"

	"github.com/fhirsub/fhirsub/conformance/definitions"
	"github.com/fhirsub/fhirsub/conformance/search"
	"github.com/fhirsub/fhirsub/fhirstore"
)

// Store is what the REST API needs from persistence. fhirstore backends
// satisfy it.
type Store interface {
	Create(ctx context.Context, body map[string]any) (*fhirstore.Resource, error)
	Update(ctx context.Context, id string, body map[string]any, opt fhirstore.WriteOptions) (*fhirstore.Resource, bool, error)
	Delete(ctx context.Context, typ, id string, opt fhirstore.WriteOptions) (*fhirstore.Resource, error)
	Read(ctx context.Context, typ, id string) (*fhirstore.Resource, error)
	VRead(ctx context.Context, typ, id, versionID string) (*fhirstore.Resource, error)
	History(ctx context.Context, req fhirstore.HistoryRequest) (*fhirstore.Page, error)
	Search(ctx context.Context, q *search.Query) (*fhirstore.Page, error)
	Transaction(ctx context.Context, ops []fhirstore.Op) ([]fhirstore.OpResult, error)
	Claim(ctx context.Context, key, id string) (string, error)
	Release(ctx context.Context, key, id string) error
	Ping(ctx context.Context) error
}

// Config configures the HTTP surface. Zero values mean defaults.
type Config struct {
	// Store persists resources (required).
	Store Store
	// BaseURL is the absolute base of the FHIR API as clients see it, e.g.
	// "http://localhost:8080" (required). References and links use it.
	BaseURL string
	// MaxBodyBytes limits request bodies (default 10 MiB).
	MaxBodyBytes int64
	// Logger receives request failures (default: discard).
	Logger *slog.Logger
	// Software names this server in the CapabilityStatement.
	SoftwareName, SoftwareVersion string
	// Interceptors take part in the writes of their resource type.
	Interceptors map[string]Interceptor
	// Handlers are extra GET endpoints mounted as they are (websocket
	// upgrades, the dashboard), by path.
	Handlers map[string]http.Handler
	// ExtraTypes are served besides the R4 resource types (for example
	// SubscriptionTopic, which R4 lacks); they skip the R4 schema, so each
	// needs an interceptor that validates it.
	ExtraTypes []string
	// Subscriptions serves the Subscription operations ($status, $events)
	// and the topics of the CapabilityStatement; nil leaves them out.
	Subscriptions SubscriptionOps
	// Auth verifies bearer tokens; nil turns authentication off (every
	// request gets smart.Full()). See auth_middleware.go.
	Auth *Authenticator
	// WSBinding serves $get-ws-binding-token (see wsbinding.go); nil
	// leaves it out.
	WSBinding WSBindingIssuer
	// Readiness adds detail to GET /readyz (for example the changes the
	// matcher set aside); nil adds none. It does not change the status.
	Readiness func(ctx context.Context) map[string]any
	// ConditionalDeleteMultiple lets DELETE /Type?criteria delete every
	// matching resource (up to fhirstore.MaxCount, in one transaction);
	// off, several matches give 412.
	ConditionalDeleteMultiple bool
	// Metrics serves GET /metrics (the Prometheus text exposition that
	// cmd/fhirsub builds), without authentication like /healthz; nil
	// leaves the route out.
	Metrics http.Handler
	// Backpressure, when set, is asked before every write (create,
	// update, patch, delete, batch, transaction) and refuses it with 503
	// and Retry-After while it says the server is overloaded; nil never
	// refuses.
	Backpressure Backpressure
	// CORSOrigins are the browser origins of other sites whose pages may
	// call the API (cors.go); empty, only the server's own pages may.
	CORSOrigins Origins
}

// Server is the FHIR REST API as an http.Handler.
type Server struct {
	cfg   Config
	store Store
	log   *slog.Logger
	base  string
	echo  *echo.Echo

	extra      map[string]bool
	capMu      sync.Mutex // guards capability and capKey
	capability []byte
	capKey     string
}

// New builds the routes. It fails when a required field is missing.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("web: store required")
	}
	if cfg.BaseURL == "" {
		return nil, errors.New("web: base URL required")
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 10 << 20
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.SoftwareName == "" {
		cfg.SoftwareName = "fhirsub"
	}
	s := &Server{cfg: cfg, store: cfg.Store, log: cfg.Logger, base: strings.TrimRight(cfg.BaseURL, "/"), extra: map[string]bool{}}
	for _, t := range cfg.ExtraTypes {
		if !definitions.IsExtraType(t) {
			return nil, fmt.Errorf("web: %s is neither an R4 type nor a known extra type", t)
		}
		if cfg.Interceptors[t] == nil {
			return nil, fmt.Errorf("web: extra type %s needs an interceptor to validate it", t)
		}
		s.extra[t] = true
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.handleError
	s.echo = e
	s.routes()
	if cfg.Subscriptions == nil {
		cap, err := s.buildCapability(nil)
		if err != nil {
			return nil, err
		}
		s.capability = cap
	}
	return s, nil
}

// ServeHTTP implements http.Handler. A HEAD request is answered as the GET
// of the same URL would be (RFC 9110 §9.3.2: every general-purpose server
// supports GET and HEAD): routing, authentication and the access decision
// see a GET, and net/http drops the body it writes because the request it
// answers is still the HEAD (its Content-Length stays). Upgrade headers are
// left out, so a HEAD never opens a websocket.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodHead {
		r = r.Clone(r.Context())
		r.Method = http.MethodGet
		r.Header.Del("Upgrade")
		r.Header.Del("Connection")
	}
	s.echo.ServeHTTP(w, r)
}

// Echo exposes the router so that later layers (websocket channels,
// operations) can mount their routes next to the REST API.
func (s *Server) Echo() *echo.Echo { return s.echo }
