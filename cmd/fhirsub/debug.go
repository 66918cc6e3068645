package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime"
	"time"
)

// debugAddrOK reports whether addr may serve the profiler: empty (off) or
// a loopback host, since profiles show request data and cost CPU.
func debugAddrOK(addr string) bool {
	if addr == "" {
		return true
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// startDebug serves Go's profiler (net/http/pprof: CPU, heap, goroutine,
// block and mutex profiles under /debug/pprof/) on cfg.DebugAddr, a
// loopback address of its own apart from the FHIR API, and turns on the
// block and mutex profiles. Nothing is started when DebugAddr is empty.
func (a *app) startDebug(cfg *config, log *slog.Logger) error {
	if cfg.DebugAddr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", cfg.DebugAddr)
	if err != nil {
		return fmt.Errorf("debug listen: %w", err)
	}
	// block and mutex profiles sampled sparsely: a profile of a server
	// under load should not be the load (about one blocking event per
	// millisecond blocked, one contention in 100)
	runtime.SetBlockProfileRate(int(time.Millisecond))
	runtime.SetMutexProfileFraction(100)
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("debug server stopped", "err", err)
		}
	}()
	a.onStop(func(ctx context.Context) error {
		err := srv.Shutdown(ctx)
		<-done
		return err
	})
	log.Info("profiler serving", "addr", ln.Addr().String())
	return nil
}
