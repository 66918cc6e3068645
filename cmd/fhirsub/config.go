package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// config is every setting of `fhirsub serve`. Only this package reads flags
// and the environment; the other packages get typed Config structs.
type config struct {
	Addr            string
	DataDir         string
	SQLiteSync      string // full or normal
	BaseURL         string
	MaxBodyBytes    int64
	LogLevel        string
	LogFormat       string
	ShutdownTimeout time.Duration
	MongoURI        string
	MongoDatabase   string
	NodeID          string
	Partitions      int
	LeaseTTL        time.Duration

	RestHookAllow   []string
	RestHookTimeout time.Duration
	RestHookMaxTime time.Duration
	MaxFailures     int
	RetryBase       time.Duration
	RetryMax        time.Duration
	EventRetention  int
	DeliveryWorkers int
	// MaxNotificationLag is the notification lag over which writes are
	// refused with 503 (0: never).
	MaxNotificationLag time.Duration

	WSBindingSecret string
	WSBindingTTL    time.Duration
	LegacyHeartbeat time.Duration

	// ConditionalDeleteMultiple lets DELETE /Type?search delete every match.
	ConditionalDeleteMultiple bool

	// HTTP server limits: the request head, the whole request (head and
	// body, so a body dripping a byte at a time ends), and an idle
	// keep-alive connection.
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	IdleTimeout       time.Duration

	// MaxSubscriptionsPerOwner caps the subscriptions created by one
	// owner (a token's subject and patient); 0 means no cap.
	MaxSubscriptionsPerOwner int

	Auth     authSettings
	DevLogin bool // devlogin.go

	// GCFloorMB is the heap, in MiB, the garbage collector lets grow
	// before it collects while the live heap is smaller (gcfloor.go); 0:
	// Go's default.
	GCFloorMB int

	// CORSOrigins are the origins of other sites whose pages may call the
	// API and open its websockets (web.Origins).
	CORSOrigins []string

	// DebugAddr serves Go's profiler on a loopback address (debug.go);
	// empty: off.
	DebugAddr string
}

// register declares every setting of serve, one line each: destination,
// flag, environment variable, default, (lowest value,) help text. The
// order here is the order of --help and of the environment checks.
func (c *config) register(s *settingSet) {
	s.String(&c.Addr, "addr", "FHIRSUB_ADDR", "127.0.0.1:8080", "listen address; authentication may be off only on loopback")
	s.String(&c.DataDir, "data", "FHIRSUB_DATA", "./data", "directory of the embedded SQLite store")
	s.String(&c.SQLiteSync, "sqlite-sync", "FHIRSUB_SQLITE_SYNC", "full", "full: an acknowledged write survives power loss (fsync per group commit); normal: it survives a crash of the process only")
	s.String(&c.BaseURL, "base-url", "FHIRSUB_BASE_URL", "", "absolute base URL clients use (default http://localhost:<port>)")
	s.Int64(&c.MaxBodyBytes, "max-body", "FHIRSUB_MAX_BODY_BYTES", 10<<20, 1, "largest request body accepted, in bytes")
	s.String(&c.LogLevel, "log-level", "FHIRSUB_LOG_LEVEL", "info", "debug, info, warn or error")
	s.String(&c.LogFormat, "log-format", "FHIRSUB_LOG_FORMAT", "text", "text or json")
	s.Duration(&c.ShutdownTimeout, "shutdown-timeout", "FHIRSUB_SHUTDOWN_TIMEOUT", 10*time.Second, 0, "how long graceful shutdown may take")
	s.String(&c.MongoURI, "mongodb-uri", "MONGODB_URI", "", "use MongoDB instead of the embedded store (e.g. mongodb://host:27017)")
	s.String(&c.MongoDatabase, "mongodb-database", "MONGODB_DATABASE", "fhirsub", "MongoDB database name")
	s.String(&c.NodeID, "node-id", "FHIRSUB_NODE_ID", "", "unique name of this node among the nodes sharing one MongoDB (default hostname-pid)")
	s.Int(&c.Partitions, "partitions", "FHIRSUB_PARTITIONS", 16, 1, "partitions of the rest-hook delivery work shared by the nodes of one MongoDB (the same on every node)")
	s.Duration(&c.LeaseTTL, "lease-ttl", "FHIRSUB_LEASE_TTL", 10*time.Second, 1, "lifetime of a node's partition lease: a dead node's rest-hook work is taken over after about this long")
	s.List(&c.RestHookAllow, "resthook-allow", "FHIRSUB_RESTHOOK_ALLOW", "comma list of CIDRs or host:port that rest-hooks may reach despite the SSRF guard (e.g. 127.0.0.1/32)")
	s.Duration(&c.RestHookTimeout, "resthook-timeout", "FHIRSUB_RESTHOOK_TIMEOUT", 30*time.Second, 1, "default time limit of one rest-hook attempt (backport-timeout overrides)")
	s.Duration(&c.RestHookMaxTime, "resthook-max-timeout", "FHIRSUB_RESTHOOK_MAX_TIMEOUT", 30*time.Second, 1, "cap of one rest-hook attempt's time limit, whatever backport-timeout asks")
	s.Int(&c.MaxFailures, "max-failures", "FHIRSUB_MAX_FAILURES", 5, 1, "consecutive delivery failures before a subscription goes to status error")
	s.Duration(&c.RetryBase, "retry-base", "FHIRSUB_RETRY_BASE", time.Second, 1, "first retry delay of a failed delivery (doubles, with jitter)")
	s.Duration(&c.RetryMax, "retry-max", "FHIRSUB_RETRY_MAX", 10*time.Minute, 1, "longest retry delay")
	s.Int(&c.EventRetention, "event-retention", "FHIRSUB_EVENT_RETENTION", 1000, 1, "delivered events kept per subscription for $events")
	s.Int(&c.DeliveryWorkers, "delivery-workers", "FHIRSUB_DELIVERY_WORKERS", 64, 1, "concurrent rest-hook deliveries")
	s.String(&c.WSBindingSecret, "ws-binding-secret", "FHIRSUB_WS_BINDING_SECRET", "", "HS256 key (>= 32 bytes) of the $get-ws-binding-token tokens; default a random key per process (set it when several nodes share one URL)")
	s.Duration(&c.MaxNotificationLag, "max-notification-lag", "FHIRSUB_MAX_NOTIFICATION_LAG", 10*time.Second, 0, "notification lag (oldest change not matched, oldest due rest-hook event not delivered) over which writes get 503 with Retry-After (0: never)")
	s.Duration(&c.WSBindingTTL, "ws-binding-ttl", "FHIRSUB_WS_BINDING_TTL", 5*time.Minute, 1, "how long a $get-ws-binding-token token may be used to bind (at most 1h)")
	s.Duration(&c.LegacyHeartbeat, "legacy-heartbeat", "FHIRSUB_LEGACY_HEARTBEAT", 30*time.Second, 1, "interval of the JSON ping message on /api/ws (the original MedGenEMR heartbeat)")
	s.Duration(&c.ReadHeaderTimeout, "http-read-header-timeout", "FHIRSUB_HTTP_READ_HEADER_TIMEOUT", 10*time.Second, 1, "time limit to read a request's head")
	s.Duration(&c.ReadTimeout, "http-read-timeout", "FHIRSUB_HTTP_READ_TIMEOUT", 60*time.Second, 1, "time limit to read a whole request, body included (a body trickling in slower gets 408)")
	s.Duration(&c.IdleTimeout, "http-idle-timeout", "FHIRSUB_HTTP_IDLE_TIMEOUT", 120*time.Second, 1, "how long an idle keep-alive connection is kept open")
	s.Int(&c.MaxSubscriptionsPerOwner, "max-subscriptions-per-owner", "FHIRSUB_MAX_SUBSCRIPTIONS_PER_OWNER", 100, 0, "subscriptions one owner (token subject and patient) may hold; more are refused with 429 (0: no cap; not counted without auth)")
	s.String(&c.Auth.Mode, "auth", "FHIRSUB_AUTH", "", "off, hs256 or jwks (default: hs256 with a secret, jwks with a JWKS, else off — off only on loopback)")
	s.String(&c.Auth.Secret, "jwt-secret", "FHIRSUB_JWT_SECRET", "", "HS256 shared secret (at least 32 bytes)")
	s.String(&c.Auth.JWKS, "jwks", "FHIRSUB_JWKS", "", "JWKS file or URL with the RS256/ES256 keys")
	s.String(&c.Auth.Issuer, "jwt-issuer", "FHIRSUB_JWT_ISSUER", "", "required iss claim")
	s.String(&c.Auth.Audience, "jwt-audience", "FHIRSUB_JWT_AUDIENCE", "", "required aud claim")
	s.Duration(&c.Auth.Leeway, "jwt-leeway", "FHIRSUB_JWT_LEEWAY", 30*time.Second, 0, "clock skew allowed on exp/nbf/iat (at most 5m)")
	s.Bool(&c.ConditionalDeleteMultiple, "conditional-delete-multiple", "FHIRSUB_CONDITIONAL_DELETE_MULTIPLE", false, "let DELETE /Type?search delete every matching resource (else several matches give 412)")
	s.Bool(&c.Auth.Insecure, "insecure", "FHIRSUB_INSECURE", false, "allow running without authentication on a non-loopback address")
	s.Int(&c.GCFloorMB, "gc-floor-mb", "FHIRSUB_GC_FLOOR_MB", 128, 0, "MiB of garbage the Go collector lets pile up before it collects, while less than this is live: fewer collections, less CPU and shorter delays for that memory (0: Go's default; ignored when GOGC is set)")
	s.String(&c.DebugAddr, "debug-addr", "FHIRSUB_DEBUG_ADDR", "", "loopback host:port serving Go's profiler (/debug/pprof/) apart from the FHIR API (default off)")
	s.List(&c.CORSOrigins, "cors-origins", "FHIRSUB_CORS_ORIGINS", "comma list of browser origins (https://app.example.org) whose pages may call the API and open its websockets; * for any, with authentication on only (default: the server's own pages only)")
	s.Bool(&c.DevLogin, "dev-login", "FHIRSUB_DEV_LOGIN", false, "offer the dashboard a one-click development login minting 1h tokens from --jwt-secret (loopback only; never with --jwks)")
}

// validate checks what no single setting can check alone, in this fixed
// order (the first failure is the error reported): the listen address, the
// log level and format, the websocket binding secret, then the
// authentication settings. It runs before anything is opened, so a bad
// setting never leaves a migrated store behind.
func (c *config) validate() error {
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return settingError("addr", "FHIRSUB_ADDR", c.Addr, "is not host:port")
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return settingError("log-level", "FHIRSUB_LOG_LEVEL", c.LogLevel, "is not debug, info, warn or error")
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return settingError("log-format", "FHIRSUB_LOG_FORMAT", c.LogFormat, "is not text or json")
	}
	if c.SQLiteSync != "full" && c.SQLiteSync != "normal" {
		return settingError("sqlite-sync", "FHIRSUB_SQLITE_SYNC", c.SQLiteSync, "is not full or normal")
	}
	if !debugAddrOK(c.DebugAddr) {
		return settingError("debug-addr", "FHIRSUB_DEBUG_ADDR", c.DebugAddr, "is not a loopback host:port")
	}
	if c.WSBindingSecret != "" && len(c.WSBindingSecret) < 32 {
		return errors.New("--ws-binding-secret (FHIRSUB_WS_BINDING_SECRET): must be at least 32 bytes")
	}
	if c.WSBindingTTL > time.Hour {
		return settingError("ws-binding-ttl", "FHIRSUB_WS_BINDING_TTL", c.WSBindingTTL.String(), "is longer than 1h")
	}
	if err := c.Auth.check(c.Addr); err != nil {
		return err
	}
	return c.checkCORSOrigins()
}

// checkCORSOrigins accepts each origin as a browser sends it:
// scheme://host[:port], http or https, lower case, nothing after; or "*",
// which with authentication off would let any web page read and write the
// server.
func (c *config) checkCORSOrigins() error {
	for _, o := range c.CORSOrigins {
		if o == "*" {
			if mode, _ := c.Auth.mode(); mode == "off" {
				return settingError("cors-origins", "FHIRSUB_CORS_ORIGINS", o, "lets any web page read and write this server, and authentication is off: name the origins, or turn authentication on")
			}
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
			u.Scheme+"://"+u.Host != o || strings.ToLower(o) != o {
			return settingError("cors-origins", "FHIRSUB_CORS_ORIGINS", o, "is not an origin: write scheme://host[:port] in lower case, http or https, without a path (https://app.example.org)")
		}
	}
	return nil
}

// errVersion is returned by parseConfig for --version.
var errVersion = errors.New("version requested")

// parseConfig reads the flags of serve, falling back to the environment,
// then to the defaults. A flag wins over its environment variable; a bad
// value is reported naming both. --help writes the usage to out and
// returns flag.ErrHelp; --version returns errVersion.
func parseConfig(args []string, getenv func(string) string, out io.Writer) (*config, error) {
	c := &config{}
	s := newSettingSet("fhirsub serve")
	c.register(s)
	showVersion := s.fs.Bool("version", false, "print the version and exit")
	if err := s.parse(args, getenv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(out, s)
		}
		return nil, err
	}
	if *showVersion {
		return nil, errVersion
	}
	c.DataDir = filepath.Clean(c.DataDir)
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	if c.NodeID == "" {
		c.NodeID = defaultNodeID()
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// defaultNodeID names this process among the nodes of one MongoDB:
// hostname-pid.
func defaultNodeID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "fhirsub"
	}
	return fmt.Sprintf("%s-%d", host, os.Getpid())
}

// baseURLFor derives the public base URL from the bound address.
func baseURLFor(bound net.Addr) string {
	host, port, _ := net.SplitHostPort(bound.String())
	ip := net.ParseIP(host)
	if ip == nil || ip.IsLoopback() || ip.IsUnspecified() {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}

func newLogger(c *config, w io.Writer) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return nil, settingError("log-level", "FHIRSUB_LOG_LEVEL", c.LogLevel, "is not debug, info, warn or error")
	}
	opts := &slog.HandlerOptions{Level: lvl}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), nil
}

func usage(w io.Writer, s *settingSet) {
	fmt.Fprint(w, `fhirsub — a FHIR R4 server for real-time notification

Usage:
  fhirsub [serve] [flags]   serve the FHIR API (default)
  fhirsub token [flags]     mint a development JWT (--secret S --scope … [--patient ID])
  fhirsub demo [flags]      generate realistic clinical traffic against a running server
  fhirsub version           print the version (also: fhirsub --version)

Flags of serve (each also read from the environment variable named; a flag
wins over its variable):
`)
	s.printDefaults(w)
	fmt.Fprint(w, "  --version\n        print the version and exit\n")
}
