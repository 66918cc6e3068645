package subscriptions

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/fhirsub/fhirsub/conformance/search"
	"github.com/fhirsub/fhirsub/fhirstore"
	"github.com/fhirsub/fhirsub/topics"
)

// TestRestampIsParse: the Subscription restamp makes of the deliverer's
// own status write is the one parsing the written version gives, for
// topic-based and classic subscriptions, an end that is still ahead and
// one that passed between the two versions, and every status move; and
// restamp declines when the topic was replaced since.
func TestRestampIsParse(t *testing.T) {
	m, _ := goldenManager(t)
	v1 := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	topicBody := func(end string) string {
		return fmt.Sprintf(`{"resourceType":"Subscription","status":"requested",%s"criteria":"https://fhirsub.org/SubscriptionTopic/result-available",`+
			`"_criteria":{"extension":[{"url":%q,"valueString":"Observation?patient=Patient/p1"}]},`+
			`"channel":{"type":"rest-hook","endpoint":"https://hooks.example.org/x","header":["Authorization: Bearer t"],"payload":"application/fhir+json",`+
			`"_payload":{"extension":[{"url":%q,"valueCode":"id-only"}]}}}`, end, ExtFilterCriteria, ExtPayloadContent)
	}
	classic := `{"resourceType":"Subscription","status":"requested","reason":"r","criteria":"Observation?code=1234",` +
		`"channel":{"type":"rest-hook","endpoint":"https://hooks.example.org/c","payload":"application/fhir+json"}}`
	cases := []struct {
		name, body string
		status     Status
		msg        string
		later      time.Duration // v2's write time after v1's
	}{
		{"topic activated", topicBody(""), StatusActive, "", time.Second},
		{"topic end ahead", topicBody(`"end":"2026-01-01T11:00:00Z",`), StatusActive, "", time.Minute},
		{"topic end passed between versions", topicBody(`"end":"2026-01-01T10:00:30Z",`), StatusError, "handshake failed", time.Minute},
		{"topic end past at v1", topicBody(`"end":"2025-01-01T00:00:00Z",`), StatusActive, "", time.Second},
		{"classic to error", classic, StatusError, "delivery to https://hooks.example.org/c failed 5 time(s)", time.Second},
		{"classic to off", classic, StatusOff, "", time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var body map[string]any
			if err := json.Unmarshal([]byte(tc.body), &body); err != nil {
				t.Fatal(err)
			}
			s, err := m.parse(body, &fhirstore.Resource{Type: "Subscription", ID: "s1", VersionID: "1", LastUpdated: v1})
			if err != nil {
				t.Fatal(err)
			}
			body["status"] = string(tc.status)
			if tc.msg != "" {
				body["error"] = tc.msg
			}
			nres := &fhirstore.Resource{Type: "Subscription", ID: "s1", VersionID: "2", LastUpdated: v1.Add(tc.later)}
			want, err := m.parse(body, nres)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := restamp(s, nres, tc.status, tc.msg, m.topics.Get)
			if !ok {
				t.Fatal("restamp declined with the topic unchanged")
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("restamp:\n %+v\nparse:\n %+v", got, want)
			}
		})
	}
	t.Run("topic replaced", func(t *testing.T) {
		var body map[string]any
		if err := json.Unmarshal([]byte(topicBody("")), &body); err != nil {
			t.Fatal(err)
		}
		s, err := m.parse(body, &fhirstore.Resource{Type: "Subscription", ID: "s1", VersionID: "1", LastUpdated: v1})
		if err != nil {
			t.Fatal(err)
		}
		replaced := func(string) (*topics.Topic, bool) { return &topics.Topic{URL: s.TopicURL()}, true }
		if _, ok := restamp(s, &fhirstore.Resource{VersionID: "2", LastUpdated: v1}, StatusActive, "", replaced); ok {
			t.Error("restamp kept a topic the registry no longer has")
		}
	})
}

// TestTopicURLAndEnd: a parsed Subscription gives back its criteria as
// written, with or without the topic's version, and keeps an end that is
// ahead, however far (past 2262 it is clamped and never comes).
func TestTopicURLAndEnd(t *testing.T) {
	m, _ := goldenManager(t)
	written := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	const url = "https://fhirsub.org/SubscriptionTopic/result-available"
	for _, tc := range []struct {
		criteria, end string
		wantEnd       time.Time
		endedAtWrite  bool
		endedIn3000   bool
	}{
		{criteria: url},
		{criteria: url + "|1.0.0", end: "2026-01-01T11:00:00.5Z", wantEnd: written.Add(time.Hour + 500*time.Millisecond), endedIn3000: true},
		{criteria: url, end: "9999-12-31T23:59:59Z", wantEnd: time.Unix(0, math.MaxInt64).UTC()},
	} {
		body := map[string]any{"resourceType": "Subscription", "status": "requested", "criteria": tc.criteria,
			"channel": map[string]any{"type": "rest-hook", "endpoint": "https://hooks.example.org/x", "payload": "application/fhir+json",
				"_payload": map[string]any{"extension": []any{map[string]any{"url": ExtPayloadContent, "valueCode": "id-only"}}}}}
		if tc.end != "" {
			body["end"] = tc.end
		}
		s, err := m.parse(body, &fhirstore.Resource{Type: "Subscription", ID: "s1", VersionID: "1", LastUpdated: written})
		if err != nil {
			t.Fatalf("%s: %v", tc.criteria, err)
		}
		if got := s.TopicURL(); got != tc.criteria {
			t.Errorf("TopicURL() = %q, want the criteria %q", got, tc.criteria)
		}
		if got := s.End(); !got.Equal(tc.wantEnd) {
			t.Errorf("end %q: End() = %v, want %v", tc.end, got, tc.wantEnd)
		}
		if got := s.ended(written); got != tc.endedAtWrite {
			t.Errorf("end %q: ended when written = %v", tc.end, got)
		}
		if got := s.ended(time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)); got != tc.endedIn3000 {
			t.Errorf("end %q: ended in 3000 = %v, want %v", tc.end, got, tc.endedIn3000)
		}
	}
	if s := (&Subscription{Criteria: &search.Query{}}); s.TopicURL() != "" {
		t.Errorf("a classic subscription has TopicURL %q", s.TopicURL())
	}
}
