package subscriptions

import (
	"context"
	"testing"

	"github.com/fhirsub/fhirsub/fhirstore"
)

// BenchmarkNotification builds and encodes the notification of one event
// as a rest-hook delivery does, at each content level.
func BenchmarkNotification(b *testing.B) {
	for _, content := range []Content{ContentEmpty, ContentIDOnly, ContentFullResource} {
		b.Run(string(content), func(b *testing.B) {
			m, _ := goldenManager(b)
			s := goldenSub(m, content)
			n := Notice{Kind: KindEvent, Status: StatusActive, Count: 1, Events: []fhirstore.Event{ev(1, "1", fhirstore.InteractionCreate)}}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				bundle, err := m.Notification(ctx, s, n)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := EncodeBundle(bundle); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
