package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"runtime/debug"

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
	a, err := start(ctx, cfg, log)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "fhirsub %s serving %s (store: %s)\n", buildVersion(), a.baseURL, a.storeName)
	fmt.Fprintf(stdout, "  dashboard:    %s/\n", a.baseURL)
	fmt.Fprintf(stdout, "  try:          curl %s/metadata\n", a.baseURL)
	fmt.Fprintf(stdout, "  demo traffic: go run ./cmd/fhirsub demo --base-url %s   (in another terminal)\n", a.baseURL)
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
