package main

import (
	"io"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestParseLagLine(t *testing.T) {
	for _, c := range []struct {
		line string
		ch   string
		v    float64
		ok   bool
	}{
		{`fhirsub_notification_lag_seconds{channel="matcher"} 0.25`, "matcher", 0.25, true},
		{`fhirsub_notification_lag_seconds{channel="rest-hook"} 1.5e-05`, "rest-hook", 1.5e-05, true},
		{`# HELP fhirsub_notification_lag_seconds Age`, "", 0, false},
		{`fhirsub_notification_lag_seconds{channel="websocket"} x`, "", 0, false},
		{`fhirsub_notification_lag_seconds_total{channel="m"} 1`, "", 0, false},
	} {
		ch, v, ok := parseLagLine(c.line)
		if ch != c.ch || v != c.v || ok != c.ok {
			t.Errorf("parseLagLine(%q) = %q %v %v, want %q %v %v", c.line, ch, v, ok, c.ch, c.v, c.ok)
		}
	}
}

// TestBurnEnds: a burner ends at its -for, and at once when its input
// closes, whatever -for says.
func TestBurnEnds(t *testing.T) {
	start := time.Now()
	if err := burnCmd([]string{"-for", "50ms"}, strings.NewReader(""), io.Discard); err != nil {
		t.Fatal(err)
	}
	t.Logf("-for 50ms with stdin at EOF: returned after %v", time.Since(start))
	r, w := io.Pipe()
	done := make(chan error, 1)
	start = time.Now()
	go func() { done <- burnCmd([]string{"-for", "1m"}, r, io.Discard) }()
	time.Sleep(20 * time.Millisecond)
	_ = w.Close()
	select {
	case err := <-done:
		t.Logf("-for 1m, stdin closed after 20ms: returned after %v (%v)", time.Since(start), err)
	case <-time.After(30 * time.Second):
		t.Fatal("a burner whose input closed was still running 30 s later")
	}
	if err := burnCmd([]string{"-for", "0s"}, strings.NewReader(""), io.Discard); err == nil {
		t.Error("-for 0s accepted")
	}
}

// TestBurnersStop starts real burner processes (this test binary
// re-executed, see TestMain) and checks that stop leaves none running.
func TestBurnersStop(t *testing.T) {
	b, err := startBurners(2, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	cmds := append(b.cmds[:0:0], b.cmds...)
	time.Sleep(100 * time.Millisecond)
	b.stop()
	b.stop() // twice is fine
	for _, c := range cmds {
		t.Logf("burner %d: %v", c.Process.Pid, c.ProcessState)
		if c.ProcessState == nil {
			t.Errorf("burner %d not waited for", c.Process.Pid)
		}
		// signal 0 to a reaped pid fails: the process is gone
		if err := syscall.Kill(c.Process.Pid, 0); err == nil {
			t.Errorf("burner %d still exists after stop", c.Process.Pid)
		}
	}
}
