package subscriptions_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fhirsub/fhirsub/subscriptions"
)

// latencyReceiver records when each (subscription, event number) first
// arrived.
type latencyReceiver struct {
	srv     *httptest.Server
	mu      sync.Mutex
	arrived map[string]map[int64]time.Time
	hands   map[string]bool
}

func newLatencyReceiver(b *testing.B) *latencyReceiver {
	r := &latencyReceiver{arrived: map[string]map[int64]time.Time{}, hands: map[string]bool{}}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		now := time.Now()
		var n notice
		if err := json.NewDecoder(req.Body).Decode(&n); err != nil || len(n.Entry) == 0 {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		sub, typ, nums := n.read()
		r.mu.Lock()
		if typ == "handshake" {
			r.hands[sub] = true
		}
		m := r.arrived[sub]
		if m == nil {
			m = map[int64]time.Time{}
			r.arrived[sub] = m
		}
		for _, k := range nums {
			if _, ok := m[k]; !ok {
				m[k] = now
			}
		}
		r.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	b.Cleanup(r.srv.Close)
	return r
}

func (r *latencyReceiver) handshakes() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.hands)
}

// latencies returns, for events first..last of every subscription that
// had a handshake, the time from the write (wrote[k-1]) to its arrival,
// and how many have not arrived.
func (r *latencyReceiver) latencies(wrote []time.Time, first, last int64) (lat []time.Duration, missing int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for sub := range r.hands {
		for k := first; k <= last; k++ {
			at, ok := r.arrived[sub][k]
			if !ok {
				missing++
				continue
			}
			lat = append(lat, at.Sub(wrote[k-1]))
		}
	}
	return lat, missing
}

// hungReceiver accepts requests and never answers them (until cleanup).
func hungReceiver(b *testing.B, hits *atomic.Int64) *httptest.Server {
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		hits.Add(1)
		select {
		case <-stop:
		case <-req.Context().Done():
		}
	}))
	b.Cleanup(func() {
		close(stop)
		srv.CloseClientConnections()
		srv.Close()
	})
	return srv
}

func p99(lat []time.Duration) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	slices.Sort(lat)
	return lat[min(len(lat)-1, len(lat)*99/100)]
}

// BenchmarkHungEndpoints measures what hung receivers cost the healthy
// ones: 100 healthy rest-hook subscriptions on one local receiver get a
// paced stream of matching writes (one every 250 ms: 400 healthy deliveries/s, well below what a loaded 2-core machine delivers, so that the p99 is latency, not backlog), first alone, then
// beside 20 subscriptions whose 20 receivers (one port each) accept
// connections and never answer, with backport-timeout 120 s (the server
// caps it at 30 s). Each phase is b.N writes; the hung phase starts once
// every hung receiver holds an attempt and SlowAfter has passed, so it
// measures the steady state (the first SlowAfter after a receiver hangs is
// not covered). It reports the healthy deliveries' p99 (write to arrival)
// of both phases and their ratio (goal ≤ 2).
func BenchmarkHungEndpoints(b *testing.B) {
	const healthy, hung, pace = 100, 20, 250 * time.Millisecond
	r := newLatencyReceiver(b)
	e := newEnv(b, func(c *subscriptions.Config) { c.Timeout = 30 * time.Second })
	ctx := context.Background()
	for range healthy {
		sub := topicSub(r.srv.URL, resultTopic, "id-only", "Observation?patient=Patient/hb")
		delete(sub, "end")
		e.mustDo(201, "POST", "/Subscription", sub)
	}
	deadline := time.Now().Add(time.Minute)
	for r.handshakes() < healthy {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d handshakes", r.handshakes(), healthy)
		}
		time.Sleep(10 * time.Millisecond)
	}

	var wrote []time.Time
	phase := func() (time.Duration, int, int) {
		first := int64(len(wrote) + 1)
		t := time.NewTicker(pace)
		defer t.Stop()
		for range b.N {
			<-t.C
			wrote = append(wrote, time.Now())
			if _, err := e.db.Create(ctx, observation("hb", "final")); err != nil {
				b.Fatal(err)
			}
		}
		last := int64(len(wrote))
		var lat []time.Duration
		var missing int
		for end := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
			if lat, missing = r.latencies(wrote, first, last); missing == 0 || time.Now().After(end) {
				break
			}
		}
		return p99(lat), len(lat), missing
	}

	b.ResetTimer()
	alone, n1, miss1 := phase()
	b.StopTimer()
	var hits atomic.Int64
	for range hung {
		h := hungReceiver(b, &hits)
		sub := topicSub(h.URL, resultTopic, "id-only", "Observation?patient=Patient/hb")
		delete(sub, "end")
		channelExt(sub, subscriptions.ExtTimeout, "valueUnsignedInt", 120)
		e.mustDo(201, "POST", "/Subscription", sub)
	}
	for end := time.Now().Add(time.Minute); hits.Load() < hung && time.Now().Before(end); {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(2*time.Second + 500*time.Millisecond) // the default SlowAfter and a tick
	b.StartTimer()
	beside, n2, miss2 := phase()
	b.StopTimer()

	ratio := float64(beside) / float64(max(alone, time.Microsecond))
	b.Logf("hung endpoints: healthy p99 alone %v (%d deliveries, %d missing), beside %d hung %v (%d deliveries, %d missing), ratio %.2f (goal <= 2), hung receivers reached %d",
		alone, n1, miss1, hung, beside, n2, miss2, ratio, hits.Load())
	b.ReportMetric(float64(alone.Microseconds())/1000, "p99-alone-ms")
	b.ReportMetric(float64(beside.Microseconds())/1000, "p99-hung-ms")
	b.ReportMetric(ratio, "p99-ratio")
	if miss1+miss2 > 0 {
		b.Errorf("%d healthy deliveries missing", miss1+miss2)
	}
}
