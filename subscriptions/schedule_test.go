package subscriptions

import (
	"fmt"
	"testing"
	"time"

	"github.com/fhirsub/fhirsub/channels"
	"github.com/fhirsub/fhirsub/fhirstore"
	"github.com/fhirsub/fhirsub/topics"
)

var t0 = time.Date(2025, 1, 2, 3, 0, 0, 0, time.UTC)

func restHookSub(id string, hb time.Duration) *Subscription {
	return &Subscription{ID: id, VersionID: "1", Status: StatusActive, ChannelType: ChannelRestHook, Heartbeat: hb}
}

// BenchmarkScheduleTick measures one look of the schedule loop with n
// rest-hook subscriptions with heartbeats, of which none is due: the cost
// must stay flat as n grows (the loop used to walk every subscription).
func BenchmarkScheduleTick(b *testing.B) {
	for _, n := range []int{1_000, 10_000, 100_000} {
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) {
			reg := topics.NewRegistry()
			tp := topics.BuiltIn()[0]
			reg.Put(tp)
			m, err := New(Config{Topics: reg, ValidateEndpoint: channels.ValidateEndpoint, Store: &fakeStore{versions: map[string]*fhirstore.Resource{}},
				Events: &fakeEvents{states: map[string]fhirstore.SubscriptionState{}}, BaseURL: "https://fhir.example.org/r4",
				Now: func() time.Time { return t0 }})
			if err != nil {
				b.Fatal(err)
			}
			for i := range n {
				s := restHookSub(fmt.Sprintf("s%d", i), time.Hour)
				s.Topic = tp
				m.reg.put(s, 0)
				m.sched.Touch(s.ID, t0.Add(time.Duration(i)*time.Millisecond))
			}
			b.ResetTimer()
			for range b.N {
				m.dl.tick()
			}
		})
	}
}
