package subscriptions

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"unsafe"

	"github.com/fhirsub/fhirsub/channels"
	"github.com/fhirsub/fhirsub/fhirstore"
	"github.com/fhirsub/fhirsub/topics"
)

// seqStore answers LastSeq for committedSubscription.
type seqStore struct{ *fakeStore }

func (seqStore) LastSeq(context.Context) (int64, error) { return 1, nil }

// memSubBody is a typical topic-based rest-hook subscription as a client
// submits it: a patient filter, an authorization header, a heartbeat.
func memSubBody(i int) []byte {
	return fmt.Appendf(nil, `{"resourceType":"Subscription","id":"s%07d","meta":{"versionId":"1","profile":[%q]},"status":"active","reason":"load",`+
		`"criteria":"https://fhirsub.org/SubscriptionTopic/result-available","_criteria":{"extension":[{"url":%q,"valueString":"Observation?patient=Patient/p%d"}]},`+
		`"channel":{"type":"rest-hook","endpoint":"https://hooks.example.org/notify","header":["Authorization: Bearer token-%d"],"payload":"application/fhir+json",`+
		`"_payload":{"extension":[{"url":%q,"valueCode":"id-only"}]},"extension":[{"url":%q,"valueUnsignedInt":60}]}}`,
		i, ProfileSubscription, ExtFilterCriteria, i, i, ExtPayloadContent, ExtHeartbeatPeriod)
}

// memBenchKeep holds the last benchmark Manager so that -memprofile
// shows what it keeps.
var memBenchKeep *Manager

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkSubscriptionMemory registers n subscriptions through the path a
// committed create takes (parse, index, schedule, queue) and reports the
// heap bytes each keeps live, plus the registration rate.
func BenchmarkSubscriptionMemory(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			bodies := make([][]byte, n)
			for i := range bodies {
				bodies[i] = memSubBody(i)
			}
			reg := topics.NewRegistry()
			for _, tp := range topics.BuiltIn() {
				reg.Put(tp)
			}
			ctx := context.Background()
			for b.Loop() {
				b.StopTimer()
				m, err := New(Config{Store: seqStore{&fakeStore{}}, Events: &fakeEvents{}, Topics: reg, BaseURL: "http://x", ValidateEndpoint: channels.ValidateEndpoint})
				if err != nil {
					b.Fatal(err)
				}
				before := heapInUse()
				b.StartTimer()
				for i, body := range bodies {
					res := &fhirstore.Resource{Type: "Subscription", ID: fmt.Sprintf("s%07d", i), VersionID: "1", Body: body}
					if err := m.committedSubscription(ctx, res, fhirstore.InteractionUpdate); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				after := heapInUse()
				b.ReportMetric(float64(after-before)/float64(n), "heapB/sub")
				memBenchKeep = m // live for -memprofile
				b.StartTimer()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/sub")
		})
	}
}

// TestSubscriptionStaysSmall guards the size of a parsed Subscription, of
// which the server keeps one per subscription: 288 bytes is a size class
// of Go's allocator, the next is 320.
func TestSubscriptionStaysSmall(t *testing.T) {
	if n := unsafe.Sizeof(Subscription{}); n > 288 {
		t.Errorf("a Subscription is %d bytes, want at most 288", n)
	}
}
