package channels_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fhirsub/fhirsub/channels"
)

// BenchmarkRestHookDeliveries sends notification-sized POSTs from many
// concurrent senders to a local receiver (same process, so the receiver's
// CPU is counted too) and reports deliveries per second.
func BenchmarkRestHookDeliveries(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	body := []byte(`{"resourceType":"Bundle","type":"history","entry":[` +
		strings.Repeat(`{"fullUrl":"http://fhir.example.org/Observation/1","request":{"method":"POST","url":"Observation"},"response":{"status":"201"}},`, 10) +
		`{}]}`)
	for _, bc := range []struct {
		name   string
		secret []byte
	}{
		{"Plain", nil},
		{"Signed", []byte("benchmark-secret")},
	} {
		b.Run(bc.name, func(b *testing.B) {
			rh, err := channels.NewRestHook(channels.RestHookConfig{Allow: []string{"127.0.0.1"}, MaxConnsPerHost: 128})
			if err != nil {
				b.Fatal(err)
			}
			defer rh.Close()
			req := channels.Request{URL: srv.URL + "/hook", ContentType: "application/fhir+json", Body: body,
				Headers: []string{"Authorization: Bearer token"}, Secret: bc.secret}
			b.ReportAllocs()
			b.SetParallelism(16)
			start := time.Now()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := rh.Send(context.Background(), req); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "deliveries/s")
		})
	}
}
