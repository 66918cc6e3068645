package subscriptions

import (
	"testing"

	"github.com/fhirsub/fhirsub/fhirstore"
	"github.com/fhirsub/fhirsub/subscriptions/delivery"
	"github.com/fhirsub/fhirsub/topics"
)

// TestParseKeepsDestination checks that a parsed rest-hook Subscription
// carries its endpoint's fairness key, the one the delivery queue groups
// and times receivers by, and that other channels carry none.
func TestParseKeepsDestination(t *testing.T) {
	p := &parser{topics: topics.NewRegistry(), endpoint: func(string) error { return nil }, client: true}
	for _, c := range []struct{ channel, want string }{
		{`{"type":"rest-hook","endpoint":"https://Receiver.example.org/hook","payload":"application/fhir+json"}`, "receiver.example.org:443"},
		{`{"type":"rest-hook","endpoint":"http://127.0.0.1:9000/a/b"}`, "127.0.0.1:9000"},
		{`{"type":"rest-hook","endpoint":"http://[::1]/x"}`, "[::1]:80"},
		{`{"type":"websocket","payload":"application/fhir+json"}`, ""},
	} {
		body, err := fhirstore.Decode([]byte(`{"resourceType":"Subscription","status":"requested","reason":"x",` +
			`"criteria":"Observation?code=1","channel":` + c.channel + `}`))
		if err != nil {
			t.Fatal(err)
		}
		s, err := p.parse(body, nil)
		if err != nil {
			t.Fatalf("%s: %v", c.channel, err)
		}
		if s.dest != c.want {
			t.Errorf("%s: dest %q, want %q", c.channel, s.dest, c.want)
		}
		if s.ChannelType == ChannelRestHook && s.dest != delivery.Destination(s.Endpoint) {
			t.Errorf("%s: dest %q is not Destination(%q)", c.channel, s.dest, s.Endpoint)
		}
	}
}
