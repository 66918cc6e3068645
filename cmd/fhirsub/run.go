package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"runtime/debug"
	"time"

	"github.com/fhirsub/fhirsub/fhirstore"
	"github.com/fhirsub/fhirsub/fhirstore/sqlite"
	"github.com/fhirsub/fhirsub/web"
)

// version is set at link time (-ldflags "-X main.version=…"); otherwise the
// module version from the build info is used.
var version = ""

func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "devel"
}

// run is the whole program; main only supplies the process environment.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "serve":
		err = serveCmd(ctx, args, getenv, stdout, stderr)
	case "demo":
		err = demoCmd(ctx, args, getenv, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "fhirsub", buildVersion())
	case "help":
		_, err = parseConfig([]string{"-h"}, getenv, stderr)
	default:
		err = fmt.Errorf("unknown command %q (try fhirsub --help)", cmd)
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "fhirsub:", err)
		return 1
	}
	return 0
}

func serveCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseConfig(args, getenv, stderr)
	if err != nil {
		return err
	}
	log, err := newLogger(cfg, stderr)
	if err != nil {
		return err
	}
	a, err := start(ctx, cfg, log)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "fhirsub %s serving %s (store: %s)\n", buildVersion(), a.baseURL, a.storeName)
	fmt.Fprintf(stdout, "  try: curl %s/metadata\n", a.baseURL)
	select {
	case <-ctx.Done():
	case err := <-a.serveErr:
		_ = a.shutdown(context.Background())
		return fmt.Errorf("http server: %w", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	log.Info("shutting down")
	return a.shutdown(sctx)
}

// app is one running server: the store, the HTTP server and what they own.
type app struct {
	log       *slog.Logger
	store     fhirstore.Store
	storeName string
	http      *http.Server
	baseURL   string
	serveErr  chan error
}

// start opens the store, binds the listener and serves in the background.
// The caller must call shutdown.
func start(ctx context.Context, cfg *config, log *slog.Logger) (*app, error) {
	a := &app{log: log, serveErr: make(chan error, 1)}
	var err error
	a.store, a.storeName, err = openStore(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		_ = a.store.Close()
		return nil, fmt.Errorf("listen: %w", err)
	}
	a.baseURL = cfg.BaseURL
	if a.baseURL == "" {
		a.baseURL = baseURLFor(ln.Addr())
	}
	srv, err := web.New(web.Config{
		Store:           a.store,
		BaseURL:         a.baseURL,
		MaxBodyBytes:    cfg.MaxBodyBytes,
		Logger:          log,
		SoftwareVersion: buildVersion(),
	})
	if err != nil {
		_ = ln.Close()
		_ = a.store.Close()
		return nil, err
	}
	a.http = &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	go func() {
		if err := a.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.serveErr <- err
		}
		close(a.serveErr)
	}()
	log.Info("serving", "addr", ln.Addr().String(), "base", a.baseURL, "store", a.storeName)
	return a, nil
}

// shutdown stops accepting requests, waits for in-flight ones, then closes
// the store.
func (a *app) shutdown(ctx context.Context) error {
	err := a.http.Shutdown(ctx)
	for range a.serveErr { // wait for the serving goroutine
	}
	if cerr := a.store.Close(); cerr != nil && err == nil {
		err = cerr
	}
	return err
}

func openStore(ctx context.Context, cfg *config, log *slog.Logger) (fhirstore.Store, string, error) {
	if cfg.MongoURI != "" {
		return openMongo(ctx, cfg, log)
	}
	path := filepath.Join(cfg.DataDir, "fhirsub.db")
	db, err := sqlite.Open(ctx, sqlite.Config{Path: path, Logger: log})
	if err != nil {
		return nil, "", fmt.Errorf("open store: %w", err)
	}
	return db, "sqlite " + path, nil
}
