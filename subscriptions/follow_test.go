package subscriptions

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/fhirsub/fhirsub/fhirstore"
	"github.com/fhirsub/fhirsub/subscriptions/delivery"
	"github.com/fhirsub/fhirsub/topics"
)

// resultTopicResource is the built-in result-available topic as a
// resource, changed by edit: a stored SubscriptionTopic version of its own.
func resultTopicResource(t *testing.T, edit func(res map[string]any)) map[string]any {
	t.Helper()
	for _, res := range topics.BuiltInResources() {
		if res["url"] == "https://fhirsub.org/SubscriptionTopic/result-available" {
			edit(res)
			return res
		}
	}
	t.Fatal("no built-in result-available topic")
	return nil
}

// withoutFilters drops the canFilterBy entries of the parameters drop.
func withoutFilters(drop ...string) func(map[string]any) {
	return func(res map[string]any) {
		var keep []any
		for _, c := range res["canFilterBy"].([]any) {
			if p, _ := c.(map[string]any)["filterParameter"].(string); !slices.Contains(drop, p) {
				keep = append(keep, c)
			}
		}
		res["canFilterBy"] = keep
	}
}

// resultTopicVersion parses the built-in result-available topic as a
// stored SubscriptionTopic version of its own, without the canFilterBy
// entries of drop.
func resultTopicVersion(t *testing.T, drop ...string) *topics.Topic {
	t.Helper()
	tp, err := topics.Parse(resultTopicResource(t, withoutFilters(drop...)))
	if err != nil {
		t.Fatal(err)
	}
	return tp
}

// TestFollowTopicRebindsFilters: a new version of a topic takes over the
// subscriptions naming it with their filters parsed again for it (from the
// filter's canonical form, which may be longer than the filter as given);
// one whose filter the new version refuses keeps the old version.
func TestFollowTopicRebindsFilters(t *testing.T) {
	v1 := resultTopicVersion(t)
	long := "Observation?code=" + strings.Repeat("a/", 1500) // within the bound; its canonical form is not
	var subs []*Subscription
	for i, raw := range []string{"Observation?patient=Patient/p1&status=final", long, "Observation?performer=Practitioner/x"} {
		f, err := v1.ParseFilter(raw)
		if err != nil {
			t.Fatalf("ParseFilter(%.40q): %v", raw, err)
		}
		s := &Subscription{ID: string(rune('a' + i)), VersionID: "1", Status: StatusActive, Topic: v1,
			Filters: []*topics.Filter{f}}
		subs = append(subs, s)
	}
	r := newRegistry(delivery.NewSchedule())
	for _, s := range subs {
		r.put(s, 0)
	}

	v2 := resultTopicVersion(t, "performer")
	r.followTopic(v2, slog.New(slog.NewTextHandler(io.Discard, nil)))

	for i, s := range subs {
		got, ok := r.get(s.ID)
		if !ok {
			t.Fatalf("subscription %s lost", s.ID)
		}
		if i == 2 { // performer is no longer allowed
			if got.Topic != v1 || got.Filters[0] != s.Filters[0] {
				t.Errorf("subscription %s with a filter the new version refuses was moved", s.ID)
			}
			continue
		}
		if got.Topic != v2 {
			t.Errorf("subscription %s still on the old topic version", s.ID)
			continue
		}
		if len(got.Filters) != 1 || got.Filters[0] == s.Filters[0] || got.Filters[0].String() != s.Filters[0].String() {
			t.Errorf("subscription %s: filters %v, want %v parsed again", s.ID, got.Filters, s.Filters)
		}
	}
}

// TestTopicVersionRefusingAFilterIsRefused: a new version of a topic in use
// that would not allow a live subscription's filter is refused with 409
// naming the subscription (the subscription would stay on the old version
// until a restart, then on none); one that allows every filter passes, and
// a subscription that is off does not hold the topic back.
func TestTopicVersionRefusingAFilterIsRefused(t *testing.T) {
	m := benchManager(t, 0) // s000000: Observation?patient=Patient/target on result-available
	m.reg.knowTopic("result-available", resultAvailable(t, m), 1)
	hook := m.TopicInterceptor()
	current := &fhirstore.Resource{Type: "SubscriptionTopic", ID: "result-available", VersionID: "1"}
	version := func(drop string) map[string]any { return resultTopicResource(t, withoutFilters(drop)) }

	err := hook.Validate(context.Background(), version("patient"), current)
	var e *Error
	if !errors.As(err, &e) || e.Status != http.StatusConflict || !strings.Contains(e.Message, "Subscription/s000000") {
		t.Fatalf("version without the patient filter: %v, want 409 naming Subscription/s000000", err)
	}
	if err := hook.Validate(context.Background(), version("performer"), current); err != nil {
		t.Fatalf("version keeping every filter in use: %v", err)
	}
	s, _ := m.reg.get("s000000")
	off := *s
	off.VersionID, off.Status = "2", StatusOff
	m.reg.put(&off, 0)
	if err := hook.Validate(context.Background(), version("patient"), current); err != nil {
		t.Fatalf("version refusing only the filter of a subscription that is off: %v", err)
	}
}

// TestTopicVersionFollowedInFeedOrder: a topic version committed through
// the API is known at once (a Subscription written next may name it), but
// its subscriptions move to it only when the matcher meets it in the
// change feed, so that the changes committed before it are matched by the
// version they were committed under. Met again in the feed, or through the
// API after the feed, a version changes nothing.
func TestTopicVersionFollowedInFeedOrder(t *testing.T) {
	m := benchManager(t, 0) // s000000 on result-available, version 1
	m.reg.knowTopic("result-available", resultAvailable(t, m), 1)
	v1, _ := m.reg.get("s000000")
	body, err := json.Marshal(resultTopicResource(t, func(res map[string]any) {
		res["title"] = "version 2"
	}))
	if err != nil {
		t.Fatal(err)
	}
	res := &fhirstore.Resource{Type: "SubscriptionTopic", ID: "result-available", VersionID: "2", Body: body}
	onTopic := func() *topics.Topic {
		s, _ := m.reg.get("s000000")
		return s.Topic
	}

	if err := m.TopicInterceptor().Committed(context.Background(), res, fhirstore.InteractionUpdate); err != nil {
		t.Fatal(err)
	}
	if known, _ := m.topics.Get(v1.Topic.URL); known == nil || known.Title != "version 2" {
		t.Fatalf("after the API's commit the registry of topics has %v, want version 2", known)
	}
	if onTopic() != v1.Topic {
		t.Fatal("the subscription moved to version 2 before the matcher met it in the feed")
	}
	if err := m.topicCommitted(res); err != nil {
		t.Fatal(err)
	}
	moved := onTopic()
	if moved == v1.Topic || moved.Title != "version 2" {
		t.Fatalf("after the feed the subscription is on %q, want version 2", moved.Title)
	}
	for _, again := range []func() error{
		func() error { return m.topicCommitted(res) },
		func() error {
			return m.TopicInterceptor().Committed(context.Background(), res, fhirstore.InteractionUpdate)
		},
	} {
		if err := again(); err != nil || onTopic() != moved {
			t.Fatalf("version 2 applied again: err %v, subscription moved again %v", err, onTopic() != moved)
		}
	}
}

// resultAvailable is the built-in result-available topic as m knows it.
func resultAvailable(t *testing.T, m *Manager) *topics.Topic {
	t.Helper()
	tp, ok := m.topics.Get("https://fhirsub.org/SubscriptionTopic/result-available")
	if !ok {
		t.Fatal("the built-in result-available topic is not known")
	}
	return tp
}
