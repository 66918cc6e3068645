package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
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
	}
	var err error
	if c.MaxBodyBytes, err = strconv.ParseInt(*vals["max-body"], 10, 64); err != nil || c.MaxBodyBytes <= 0 {
		return nil, fmt.Errorf("max-body: %q is not a positive number of bytes", *vals["max-body"])
	}
	if c.ShutdownTimeout, err = time.ParseDuration(*vals["shutdown-timeout"]); err != nil {
		return nil, fmt.Errorf("shutdown-timeout: %w", err)
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return nil, fmt.Errorf("addr: %w", err)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return nil, errors.New("log-format: must be text or json")
	}
	return c, nil
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
  fhirsub demo [flags]      generate realistic clinical traffic against a running server
  fhirsub version           print the version

Flags of serve (each also read from the environment variable named):
`)
	fs.PrintDefaults()
}
