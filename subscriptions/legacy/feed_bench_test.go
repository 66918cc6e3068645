package legacy_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/fhirsub/fhirsub/channels"
)

// BenchmarkCommitToFrame measures commit → frame latency through the whole
// legacy pipeline (SQLite write, change feed, Feed, Legacy fan-out, hub,
// a real websocket read) at 500 writes/s with 1,000 subscribers for 3 s.
// Latency runs from just before Store.Create (so it includes the write
// itself) to the client's read.
//
//   - per-patient: each subscriber filters on its own patient, each write
//     reaches one of them (the dashboard case);
//   - broadcast-10: ten of the 1,000 subscribe to every Observation, so
//     each write fans out to 10 + 1 sockets.
func BenchmarkCommitToFrame(b *testing.B) {
	b.Run("per-patient", func(b *testing.B) { benchCommitToFrame(b, 0) })
	b.Run("broadcast-10", func(b *testing.B) { benchCommitToFrame(b, 10) })
}

func benchCommitToFrame(b *testing.B, broadcast int) {
	const (
		subscribers = 1000
		rate        = 500
		duration    = 3 * time.Second
	)
	s := mustStart(b, "", channels.Config{}, channels.LegacyConfig{})
	var (
		mu        sync.Mutex
		latencies []time.Duration
		wg        sync.WaitGroup
	)
	conns := make([]*websocket.Conn, subscribers)
	for i := range conns {
		ws, _, err := websocket.DefaultDialer.Dial(s.url, nil)
		if err != nil {
			b.Fatal(err)
		}
		conns[i] = ws
		var patients []string
		if i >= broadcast {
			patients = []string{fmt.Sprint("p", i)}
		}
		subscribe(b, ws, "s", []string{"Observation"}, patients)
		wg.Add(1)
		go func() {
			defer wg.Done()
			marker := []byte(`"valueString":"t=`)
			for {
				_, data, err := ws.ReadMessage()
				if err != nil {
					return
				}
				now := time.Now()
				j := bytes.Index(data, marker)
				if j < 0 {
					continue
				}
				rest := data[j+len(marker):]
				k := bytes.IndexByte(rest, '"')
				ns, err := strconv.ParseInt(string(rest[:k]), 10, 64)
				if err != nil {
					continue
				}
				mu.Lock()
				latencies = append(latencies, now.Sub(time.Unix(0, ns)))
				mu.Unlock()
			}
		}()
	}

	ctx := context.Background()
	writes := int(rate * duration / time.Second)
	work := make(chan int)
	var writers sync.WaitGroup
	for range 4 {
		writers.Add(1)
		go func() {
			defer writers.Done()
			for i := range work {
				body := resource(b, fmt.Sprintf(`{"resourceType":"Observation","status":"final","code":{"text":"k"},`+
					`"subject":{"reference":"Patient/p%d"},"valueString":"t=%d"}`, broadcast+i%(subscribers-broadcast), time.Now().UnixNano()))
				if _, err := s.store.Create(ctx, body); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		for i := range writes {
			time.Sleep(time.Until(start.Add(time.Duration(i) * time.Second / rate)))
			work <- i
		}
	}
	close(work)
	writers.Wait()
	want := writes * (1 + broadcast)
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(latencies)
		mu.Unlock()
		if n >= want || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.StopTimer()
	for _, ws := range conns {
		_ = ws.Close()
	}
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	if len(latencies) < want {
		b.Errorf("%d of %d frames arrived", len(latencies), want)
	}
	if len(latencies) == 0 {
		return
	}
	slices.Sort(latencies)
	pct := func(p float64) float64 {
		return float64(latencies[int(p*float64(len(latencies)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(len(latencies)), "frames")
}
