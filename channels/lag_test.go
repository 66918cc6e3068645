package channels_test

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fhirsub/fhirsub/channels"
)

// TestNotificationLag dials real websockets: while the client reads, the
// hub's NotificationLag stays near 0; a client that stops reading makes
// it rise (the socket buffers fill, the writer blocks, the frames wait),
// and it falls back to 0 once that connection is gone.
func TestNotificationLag(t *testing.T) {
	checkGoroutines(t)
	// room for every frame: the stalled client must stall, not be cut off
	// as a slow consumer before the lag shows
	ts, log := serveWithLog(t, channels.Config{SendQueue: 1 << 20, SendQueueBytes: 1 << 30, WriteTimeout: time.Minute},
		channels.LegacyConfig{})
	body := `{"resourceType":"Observation","id":"o1","status":"final","subject":{"reference":"Patient/p1"},` +
		`"note":[{"text":"` + strings.Repeat("x", 64<<10) + `"}]}`
	var seq int64
	publish := func() {
		seq++
		log.publish(seq, update(t, seq, channels.ActionCreated, "Observation", "o1", []string{"p1"}, body))
	}
	if lag := ts.hub.NotificationLag(time.Now()); lag != 0 {
		t.Fatalf("lag %v with no connection, want 0", lag)
	}

	reader := mustDial(t, ts.url)
	subscribe(t, reader, "r", []string{"*"}, nil)
	var read atomic.Int64
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		for {
			if _, _, err := reader.ReadMessage(); err != nil {
				return
			}
			read.Add(1)
		}
	}()
	t.Cleanup(func() { _ = reader.Close(); <-readerDone })

	// a client that reads: 100 notifications of 64 KB in a second
	var readerMax time.Duration
	const n = 100
	for range n {
		publish()
		readerMax = max(readerMax, ts.hub.NotificationLag(time.Now()))
		time.Sleep(10 * time.Millisecond)
	}
	deadline := time.Now().Add(30 * time.Second)
	for read.Load() < n && time.Now().Before(deadline) {
		readerMax = max(readerMax, ts.hub.NotificationLag(time.Now()))
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("reading client: %d of %d frames read, max notification lag %v", read.Load(), n, readerMax)
	if read.Load() < n {
		t.Fatalf("the reading client got %d of %d frames within 30 s", read.Load(), n)
	}

	// a client that stops reading: the same stream until the lag passes
	// 1 s (the kernel's socket buffers take a few MB first)
	stalled := mustDial(t, ts.url)
	subscribe(t, stalled, "s", []string{"*"}, nil)
	var stalledMax time.Duration
	start := time.Now()
	for time.Since(start) < 60*time.Second && stalledMax <= time.Second {
		publish()
		stalledMax = max(stalledMax, ts.hub.NotificationLag(time.Now()))
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("client that stopped reading: max notification lag %v after %v, %d frames published", stalledMax,
		time.Since(start).Round(time.Millisecond), seq)
	if readerMax > 500*time.Millisecond {
		t.Errorf("with a reading client the lag reached %v, want under 500 ms", readerMax)
	}
	if stalledMax <= time.Second {
		t.Fatalf("a client that stopped reading left the lag at %v after 60 s, want over 1 s", stalledMax)
	}

	// its connection gone, nothing of it is pending any more
	_ = stalled.Close()
	eventually(t, "the lag back to 0 once the stalled client left", func() bool {
		return ts.hub.NotificationLag(time.Now()) == 0
	})
}
