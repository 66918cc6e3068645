package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

const benchObservation = `{"resourceType":"Observation","status":"final",
"category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"vital-signs"}]}],
"code":{"coding":[{"system":"http://loinc.org","code":"8867-4","display":"Heart rate"}]},
"subject":{"reference":"Patient/bench-1"},"effectiveDateTime":"2024-05-01T10:30:00Z",
"valueQuantity":{"value":72,"unit":"beats/minute","system":"http://unitsofmeasure.org","code":"/min"}}`

// BenchmarkHTTPCreate measures creates per second through the full HTTP
// stack (echo, JSON, schema validation, index extraction, SQLite commit)
// with concurrent clients, as a user of `make run` would see them: with
// the default --sqlite-sync full (an acknowledged write survives power
// loss) and, in the same run for the ratio, with --sqlite-sync normal.
func BenchmarkHTTPCreate(b *testing.B) {
	for _, mode := range []string{"full", "normal"} {
		b.Run("sync="+mode, func(b *testing.B) { benchHTTPCreate(b, "--sqlite-sync", mode) })
	}
}

func benchHTTPCreate(b *testing.B, flags ...string) {
	a := mustStartAt(b, b.TempDir(), "127.0.0.1:0", flags...)
	defer a.shutdown(context.Background())
	start := postParallel(b, a.baseURL+"/Observation", []byte(benchObservation))
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "creates/s")
}

// BenchmarkHTTPSubscriptionCreate measures rest-hook topic Subscriptions
// created per second through the full stack, 8 concurrent clients, each
// hand-shaken with a local receiver: the POST's 201, and in the
// background the matcher and the handshake. The clock stops when the
// receiver has answered every handshake.
func BenchmarkHTTPSubscriptionCreate(b *testing.B) {
	var handshakes atomic.Int64
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		handshakes.Add(1)
	}))
	defer rcv.Close()
	a := mustStartAt(b, b.TempDir(), "127.0.0.1:0", "--resthook-allow", "127.0.0.1/32")
	defer a.shutdown(context.Background())
	raw, err := json.Marshal(topicSubscription(rcv.URL, criticalTopic, "id-only", "Observation?patient=Patient/bench-1"))
	if err != nil {
		b.Fatal(err)
	}
	start := postParallel(b, a.baseURL+"/Subscription", raw)
	for deadline := time.Now().Add(time.Minute); handshakes.Load() < int64(b.N); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d handshakes after a minute", handshakes.Load(), b.N)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "subs/s")
}

// postParallel POSTs body to url b.N times from 8 concurrent clients per
// core, each answer 201, and returns when the clock started.
func postParallel(b *testing.B, url string, body []byte) time.Time {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.SetParallelism(8)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Post(url, "application/fhir+json", bytes.NewReader(body))
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	return start
}
