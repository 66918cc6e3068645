package subscriptions

import (
	"context"
	"testing"
	"time"

	"github.com/fhirsub/fhirsub/conformance/search"
	"github.com/fhirsub/fhirsub/conformance/smart"
	"github.com/fhirsub/fhirsub/fhirstore"
)

// benchMatchChained is benchMatch with one more subscription whose classic
// criteria chain through the subject (Observation?subject:Patient.name=…):
// matching it reads the Patient, so its cost sits next to the plain
// criteria's in the same report.
func benchMatchChained(b *testing.B, n int) {
	m := benchManager(b, n)
	st := &fakeStore{versions: map[string]*fhirstore.Resource{}}
	st.put("Patient", "target", "1", false, `{"resourceType":"Patient","id":"target","name":[{"family":"Target"}]}`)
	m.store = st
	q, err := search.ParseCriteria("Observation?subject:Patient.name=target&status=final")
	if err != nil {
		b.Fatal(err)
	}
	m.reg.put(&Subscription{ID: "chained", VersionID: "1", Status: StatusActive, ChannelType: ChannelRestHook,
		Access: smart.Full(), Criteria: q}, 0)
	c := fhirstore.Change{Seq: 1, Type: "Observation", ID: "o1", VersionID: "1", Interaction: fhirstore.InteractionCreate, Time: time.Now()}
	res := &fhirstore.Resource{Type: "Observation", ID: "o1", VersionID: "1"}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		ch := &loaded{store: m.store, ctx: context.Background(), c: c, res: res, cur: benchObservation, prevOK: true}
		if got := m.mt.match(c, ch); len(got) != 3 {
			b.Fatalf("%d matches, want 3 (two plain, one chained)", len(got))
		}
	}
}

func BenchmarkMatchChained_1kSubs(b *testing.B)  { benchMatchChained(b, 1_000) }
func BenchmarkMatchChained_10kSubs(b *testing.B) { benchMatchChained(b, 10_000) }
