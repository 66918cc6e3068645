package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// config is every setting of `fhirsub serve`. Only this package reads flags
// and the environment; the other packages get typed Config structs.
type config struct {
	Addr            string
	DataDir         string
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
	MaxFailures     int
	RetryBase       time.Duration
	RetryMax        time.Duration
	EventRetention  int
	DeliveryWorkers int

	WSBindingSecret string
	WSBindingTTL    time.Duration

	Auth authSettings
}

// setting binds one flag to its environment variable and default.
type setting struct {
	flag, env, def, usage string
}

var settings = []setting{
	{"addr", "FHIRSUB_ADDR", "127.0.0.1:8080", "listen address; authentication may be off only on loopback"},
	{"data", "FHIRSUB_DATA", "./data", "directory of the embedded SQLite store"},
	{"base-url", "FHIRSUB_BASE_URL", "", "absolute base URL clients use (default http://localhost:<port>)"},
	{"max-body", "FHIRSUB_MAX_BODY_BYTES", "10485760", "largest request body accepted, in bytes"},
	{"log-level", "FHIRSUB_LOG_LEVEL", "info", "debug, info, warn or error"},
	{"log-format", "FHIRSUB_LOG_FORMAT", "text", "text or json"},
	{"shutdown-timeout", "FHIRSUB_SHUTDOWN_TIMEOUT", "10s", "how long graceful shutdown may take"},
	{"mongodb-uri", "MONGODB_URI", "", "use MongoDB instead of the embedded store (e.g. mongodb://host:27017/?replicaSet=rs0)"},
	{"mongodb-database", "MONGODB_DATABASE", "fhirsub", "MongoDB database name"},
	{"node-id", "FHIRSUB_NODE_ID", "", "unique name of this node among the nodes sharing one MongoDB (default hostname-pid)"},
	{"partitions", "FHIRSUB_PARTITIONS", "16", "partitions of the rest-hook delivery work shared by the nodes of one MongoDB (the same on every node)"},
	{"lease-ttl", "FHIRSUB_LEASE_TTL", "10s", "lifetime of a node's partition lease: a dead node's rest-hook work is taken over after about this long"},
	{"resthook-allow", "FHIRSUB_RESTHOOK_ALLOW", "", "comma list of CIDRs or host:port that rest-hooks may reach despite the SSRF guard (e.g. 127.0.0.1/32)"},
	{"resthook-timeout", "FHIRSUB_RESTHOOK_TIMEOUT", "30s", "default time limit of one rest-hook attempt (backport-timeout overrides)"},
	{"max-failures", "FHIRSUB_MAX_FAILURES", "5", "consecutive delivery failures before a subscription goes to status error"},
	{"retry-base", "FHIRSUB_RETRY_BASE", "1s", "first retry delay of a failed delivery (doubles, with jitter)"},
	{"retry-max", "FHIRSUB_RETRY_MAX", "10m", "longest retry delay"},
	{"event-retention", "FHIRSUB_EVENT_RETENTION", "1000", "delivered events kept per subscription for $events"},
	{"delivery-workers", "FHIRSUB_DELIVERY_WORKERS", "16", "concurrent rest-hook deliveries"},
	{"ws-binding-secret", "FHIRSUB_WS_BINDING_SECRET", "", "HS256 key (>= 32 bytes) of the $get-ws-binding-token tokens; default a random key per process (set it when several nodes share one URL)"},
	{"ws-binding-ttl", "FHIRSUB_WS_BINDING_TTL", "5m", "how long a $get-ws-binding-token token may be used to bind (at most 1h)"},
	{"auth", "FHIRSUB_AUTH", "", "off, hs256 or jwks (default: hs256 with a secret, jwks with a JWKS, else off — off only on loopback)"},
	{"jwt-secret", "FHIRSUB_JWT_SECRET", "", "HS256 shared secret"},
	{"jwks", "FHIRSUB_JWKS", "", "JWKS file or URL with the RS256/ES256 keys"},
	{"jwt-issuer", "FHIRSUB_JWT_ISSUER", "", "required iss claim"},
	{"jwt-audience", "FHIRSUB_JWT_AUDIENCE", "", "required aud claim"},
	{"jwt-leeway", "FHIRSUB_JWT_LEEWAY", "30s", "clock skew allowed on exp/nbf/iat"},
	{"insecure", "FHIRSUB_INSECURE", "false", "allow running without authentication on a non-loopback address"},
}

// parseConfig reads flags, falling back to the environment, then defaults.
func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (*config, error) {
	fs := flag.NewFlagSet("fhirsub serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	vals := map[string]*string{}
	for _, s := range settings {
		def := s.def
		if v := getenv(s.env); v != "" {
			def = v
		}
		vals[s.flag] = fs.String(s.flag, def, fmt.Sprintf("%s (env %s)", s.usage, s.env))
	}
	fs.Usage = func() { usage(stderr, fs) }
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	c := &config{
		Addr:          *vals["addr"],
		DataDir:       filepath.Clean(*vals["data"]),
		BaseURL:       strings.TrimRight(*vals["base-url"], "/"),
		LogLevel:      *vals["log-level"],
		LogFormat:     *vals["log-format"],
		MongoURI:      *vals["mongodb-uri"],
		MongoDatabase: *vals["mongodb-database"],
		NodeID:        *vals["node-id"],
	}
	if c.NodeID == "" {
		c.NodeID = defaultNodeID()
	}
	var err error
	if c.MaxBodyBytes, err = strconv.ParseInt(*vals["max-body"], 10, 64); err != nil || c.MaxBodyBytes <= 0 {
		return nil, fmt.Errorf("max-body: %q is not a positive number of bytes", *vals["max-body"])
	}
	if c.ShutdownTimeout, err = time.ParseDuration(*vals["shutdown-timeout"]); err != nil {
		return nil, fmt.Errorf("shutdown-timeout: %w", err)
	}
	c.Auth = authSettings{Mode: *vals["auth"], Secret: *vals["jwt-secret"], JWKS: *vals["jwks"],
		Issuer: *vals["jwt-issuer"], Audience: *vals["jwt-audience"]}
	if c.Auth.Leeway, err = time.ParseDuration(*vals["jwt-leeway"]); err != nil || c.Auth.Leeway < 0 {
		return nil, fmt.Errorf("jwt-leeway: %q is not a duration", *vals["jwt-leeway"])
	}
	if c.Auth.Insecure, err = strconv.ParseBool(*vals["insecure"]); err != nil {
		return nil, fmt.Errorf("insecure: %q is not true or false", *vals["insecure"])
	}
	for _, a := range strings.Split(*vals["resthook-allow"], ",") {
		if a = strings.TrimSpace(a); a != "" {
			c.RestHookAllow = append(c.RestHookAllow, a)
		}
	}
	c.WSBindingSecret = *vals["ws-binding-secret"]
	if c.WSBindingSecret != "" && len(c.WSBindingSecret) < 32 {
		return nil, errors.New("ws-binding-secret: must be at least 32 bytes")
	}
	durations := map[string]*time.Duration{"resthook-timeout": &c.RestHookTimeout, "retry-base": &c.RetryBase, "retry-max": &c.RetryMax, "lease-ttl": &c.LeaseTTL,
		"ws-binding-ttl": &c.WSBindingTTL}
	for name, dst := range durations {
		if *dst, err = time.ParseDuration(*vals[name]); err != nil || *dst <= 0 {
			return nil, fmt.Errorf("%s: %q is not a positive duration", name, *vals[name])
		}
	}
	ints := map[string]*int{"max-failures": &c.MaxFailures, "event-retention": &c.EventRetention, "delivery-workers": &c.DeliveryWorkers,
		"partitions": &c.Partitions}
	for name, dst := range ints {
		if *dst, err = strconv.Atoi(*vals[name]); err != nil || *dst <= 0 {
			return nil, fmt.Errorf("%s: %q is not a positive number", name, *vals[name])
		}
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return nil, fmt.Errorf("addr: %w", err)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return nil, errors.New("log-format: must be text or json")
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
		return nil, fmt.Errorf("log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), nil
}

func usage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprint(w, `fhirsub — a FHIR R4 server for real-time notification

Usage:
  fhirsub [serve] [flags]   serve the FHIR API (default)
  fhirsub token [flags]     mint a development JWT (--secret S --scope … [--patient ID])
  fhirsub demo [flags]      generate realistic clinical traffic against a running server
  fhirsub version           print the version

Flags of serve (each also read from the environment variable named):
`)
	fs.PrintDefaults()
}
