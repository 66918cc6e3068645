package subscriptions_test

import (
	"context"
	"testing"
	"time"
)

// BenchmarkRestHookPipeline measures the whole pipeline on the embedded
// store: a write committed, matched, recorded, built into an id-only
// notification and POSTed to a local receiver, for one subscription
// (ordered delivery) with max-count 1. It reports deliveries per second.
func BenchmarkRestHookPipeline(b *testing.B) {
	rcv := newReceiver(b)
	e := newEnv(b)
	sub := topicSub(rcv.srv.URL, resultTopic, "id-only", "Observation?patient=Patient/p1")
	id := e.mustDo(201, "POST", "/Subscription", sub)["id"].(string)
	rcv.waitFor("handshake", forSub(b, id, "handshake"))
	pred := forSub(b, id, "event-notification")
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		if _, err := e.db.Create(ctx, observation("p1", "final")); err != nil {
			b.Fatal(err)
		}
	}
	rcv.waitN("all notifications", b.N, pred)
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "deliveries/s")
}
