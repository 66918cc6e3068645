package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"

	"github.com/fhirsub/fhirsub/fhirstore"
	"github.com/fhirsub/fhirsub/fhirstore/sqlite"
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
	if len(args) > 0 && (args[0] == "--version" || args[0] == "-version") {
		cmd, args = "version", args[1:]
	} else if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "serve":
		err = serveCmd(ctx, args, getenv, stdout, stderr)
	case "token":
		err = tokenCmd(ctx, args, getenv, stdout, stderr)
	case "demo":
		err = demoCmd(ctx, args, getenv, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "fhirsub", buildVersion())
	case "help":
		_, err = parseConfig([]string{"-h"}, getenv, stdout)
	default:
		err = fmt.Errorf("unknown command %q (try fhirsub --help)", cmd)
	}
	if errors.Is(err, errVersion) {
		fmt.Fprintln(stdout, "fhirsub", buildVersion())
		return 0
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
	cfg, err := parseConfig(args, getenv, stdout)
	if err != nil {
		return err
	}
	log, err := newLogger(cfg, stderr)
	if err != nil {
		return err
	}
	stopFloor := startGCFloor(cfg.GCFloorMB, getenv("GOGC"), log)
	defer stopFloor()
	a, err := start(ctx, cfg, log)
	if err != nil {
		return err
	}
	banner(stdout, cfg, a)
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

// banner tells the operator where the server is and what to try next; with
// authentication on, how the dashboard signs in and how to feed the demo a
// token. It never prints a secret.
func banner(w io.Writer, cfg *config, a *app) {
	self := selfCommand()
	fmt.Fprintf(w, "fhirsub %s serving %s (store: %s)\n", buildVersion(), a.baseURL, a.storeName)
	fmt.Fprintf(w, "  dashboard:    %s/\n", a.baseURL)
	fmt.Fprintf(w, "  try:          curl %s/metadata\n", a.baseURL)
	if !a.authOn {
		fmt.Fprintf(w, "  demo traffic: %s demo --base-url %s   (in another terminal)\n", self, a.baseURL)
		return
	}
	if cfg.Auth.Secret == "" { // JWKS: tokens come from the identity provider
		fmt.Fprintf(w, "  sign in:      authentication is on (JWKS): paste a bearer token from your identity provider into the dashboard\n")
		fmt.Fprintf(w, "  demo traffic: %s demo --base-url %s --token \"$TOKEN\"   (in another terminal; a token with scope %s)\n", self, a.baseURL, demoScope)
		return
	}
	login := "paste a token (" + self + " token --secret \"$FHIRSUB_JWT_SECRET\" --scope '" + devLoginScope + "')"
	if cfg.DevLogin {
		login = "click \"Development login\" (--dev-login), or " + login
	}
	fmt.Fprintf(w, "  sign in:      authentication is on (HS256): in the dashboard, %s\n", login)
	fmt.Fprintf(w, "  demo traffic: %s demo --base-url %s --jwt-secret \"$FHIRSUB_JWT_SECRET\"   (in another terminal, with the server's secret in FHIRSUB_JWT_SECRET)\n", self, a.baseURL)
}

// selfCommand is how the operator runs this program again: the binary's
// path, or "go run ./cmd/fhirsub" under go run (whose binary is temporary).
func selfCommand() string {
	exe := os.Args[0]
	if filepath.Base(exe) != "fhirsub" || strings.Contains(exe, "go-build") {
		return "go run ./cmd/fhirsub"
	}
	return exe
}

// openStore opens the store cfg names; observe, when set, is told of the
// embedded store's writer work (sqlite.Config.Observe).
func openStore(ctx context.Context, cfg *config, log *slog.Logger, observe func() func(sqlite.WriterWork)) (fhirstore.Store, string, error) {
	if cfg.MongoURI != "" {
		return openMongo(ctx, cfg, log)
	}
	path := filepath.Join(cfg.DataDir, "fhirsub.db")
	// Exclusive: one server per data directory (a second one is refused)
	scfg := sqlite.Config{Path: path, Logger: log, RelaxedSync: cfg.SQLiteSync == "normal", Exclusive: true}
	if observe != nil {
		scfg.Observe = observe()
	}
	db, err := sqlite.Open(ctx, scfg)
	if err != nil {
		return nil, "", fmt.Errorf("open store: %w", err)
	}
	return db, "sqlite " + path, nil
}
