package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// server is a fhirsub binary running as a child process on a free
// loopback port with a fresh data directory and authentication off,
// configured only through environment variables (flags may differ
// between the binaries compared; the variables do not).
type server struct {
	cmd     *exec.Cmd
	base    string
	logPath string
	exited  chan struct{}
}

// serverEnv is the environment of a server under load: this process's,
// without any FHIRSUB_ or MONGODB_ setting, plus the given ones.
func serverEnv(set map[string]string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "FHIRSUB_") && !strings.HasPrefix(kv, "MONGODB_") {
			env = append(env, kv)
		}
	}
	for k, v := range set {
		env = append(env, k+"="+v)
	}
	return env
}

// startServer starts bin with its data under dir and waits until it
// answers /metadata.
func startServer(ctx context.Context, bin, dir string) (*server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	s := &server{base: "http://" + addr, logPath: filepath.Join(dir, "server.log"), exited: make(chan struct{})}
	logf, err := os.Create(s.logPath)
	if err != nil {
		return nil, err
	}
	defer func() { _ = logf.Close() }() // the child holds its own descriptor
	s.cmd = exec.Command(bin, "serve")
	s.cmd.Env = serverEnv(map[string]string{
		"FHIRSUB_ADDR":           addr,
		"FHIRSUB_DATA":           filepath.Join(dir, "data"),
		"FHIRSUB_RESTHOOK_ALLOW": "127.0.0.1/32",
		"FHIRSUB_AUTH":           "off",
		"FHIRSUB_LOG_LEVEL":      "warn",
	})
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() { _ = s.cmd.Wait(); close(s.exited) }()

	hc := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := hc.Get(s.base + "/metadata")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		select {
		case <-s.exited:
			return nil, fmt.Errorf("%s exited during start: %v\n%s", bin, s.cmd.ProcessState, s.logTail(20))
		case <-ctx.Done():
			_ = s.stop()
			return nil, ctx.Err()
		case <-time.After(25 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = s.stop()
			return nil, fmt.Errorf("%s did not answer /metadata within 60s\n%s", bin, s.logTail(20))
		}
	}
}

func (s *server) pid() int { return s.cmd.Process.Pid }

// stop asks for a graceful shutdown (SIGTERM) and kills the process when
// it takes longer than 20s; an error says it had to be killed.
func (s *server) stop() error {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
		return nil
	case <-time.After(20 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
		return errors.New("the server did not stop within 20s of SIGTERM and was killed")
	}
}

// logTail returns the last n lines the server wrote.
func (s *server) logTail(n int) string {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
