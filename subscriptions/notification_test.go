package subscriptions

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fhirsub/fhirsub/channels"
	"github.com/fhirsub/fhirsub/conformance/smart"
	"github.com/fhirsub/fhirsub/fhirstore"
	"github.com/fhirsub/fhirsub/topics"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// fakeStore serves fixed versions to Notification (only Read and VRead
// are used; any other call panics on the nil embedded interface).
type fakeStore struct {
	fhirstore.Store
	versions map[string]*fhirstore.Resource // "Type/id/version"; "Type/id" is current
}

func (f *fakeStore) VRead(_ context.Context, typ, id, v string) (*fhirstore.Resource, error) {
	if r := f.versions[typ+"/"+id+"/"+v]; r != nil {
		return r, nil
	}
	return nil, fhirstore.ErrNotFound
}

func (f *fakeStore) Read(_ context.Context, typ, id string) (*fhirstore.Resource, error) {
	if r := f.versions[typ+"/"+id]; r != nil {
		return r, nil
	}
	return nil, fhirstore.ErrNotFound
}

func (f *fakeStore) put(typ, id, v string, deleted bool, body string) {
	r := &fhirstore.Resource{Type: typ, ID: id, VersionID: v, Deleted: deleted}
	if !deleted {
		r.Body = []byte(body)
	}
	f.versions[typ+"/"+id+"/"+v] = r
	f.versions[typ+"/"+id] = r
}

// fakeEvents is an in-memory EventStore with fixed states.
type fakeEvents struct {
	fhirstore.EventStore
	states map[string]fhirstore.SubscriptionState
}

func (f *fakeEvents) State(_ context.Context, id string) (fhirstore.SubscriptionState, error) {
	if st, ok := f.states[id]; ok {
		return st, nil
	}
	return fhirstore.SubscriptionState{}, fhirstore.ErrNoState
}

var fixedTime = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

func goldenManager(t testing.TB) (*Manager, *fakeStore) {
	t.Helper()
	st := &fakeStore{versions: map[string]*fhirstore.Resource{}}
	st.put("Patient", "p1", "1", false, `{"resourceType":"Patient","id":"p1","meta":{"versionId":"1"},"active":true}`)
	st.put("Observation", "o1", "1", false, `{"resourceType":"Observation","id":"o1","meta":{"versionId":"1"},"status":"final","code":{"text":"K"},"subject":{"reference":"Patient/p1"}}`)
	st.put("Observation", "o1", "2", false, `{"resourceType":"Observation","id":"o1","meta":{"versionId":"2"},"status":"amended","code":{"text":"K"},"subject":{"reference":"Patient/p1"}}`)
	st.put("Observation", "o1", "3", true, "")
	n := 0
	reg := topics.NewRegistry()
	for _, tp := range topics.BuiltIn() {
		reg.Put(tp)
	}
	m, err := New(Config{
		ValidateEndpoint: channels.ValidateEndpoint,
		Store:            st,
		Events:           &fakeEvents{states: map[string]fhirstore.SubscriptionState{"s1": {SubscriptionID: "s1", EventCount: 3}}},
		Topics:           reg,
		BaseURL:          "https://fhir.example.org/r4/",
		Now:              func() time.Time { return fixedTime },
		NewID: func() string {
			n++
			return fmt.Sprintf("00000000-0000-4000-8000-%012d", n)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return m, st
}

func goldenSub(m *Manager, content Content) *Subscription {
	tp, _ := m.topics.Get("https://fhirsub.org/SubscriptionTopic/result-available")
	return &Subscription{ID: "s1", VersionID: "2", Status: StatusActive, Topic: tp,
		ChannelType: ChannelRestHook, Endpoint: "https://hooks.example.org/x", Payload: "application/fhir+json", Content: content,
		Access: smart.Full()}
}

func ev(n int64, v string, in fhirstore.Interaction) fhirstore.Event {
	return fhirstore.Event{Match: fhirstore.Match{SubscriptionID: "s1", Topic: "https://fhirsub.org/SubscriptionTopic/result-available",
		Type: "Observation", ID: "o1", VersionID: v, Interaction: in}, Number: n, ChangeSeq: 10 + n,
		Time: time.Date(2025, 1, 2, 3, 0, 0, int(n)*int(time.Millisecond), time.UTC)}
}

func TestNotificationGolden(t *testing.T) {
	cases := []struct {
		name    string
		content Content
		notice  Notice
	}{
		{"handshake", ContentFullResource, Notice{Kind: KindHandshake, Status: StatusRequested, Count: 0}},
		{"heartbeat", ContentIDOnly, Notice{Kind: KindHeartbeat, Status: StatusActive, Count: 3}},
		{"heartbeat-error", ContentEmpty, Notice{Kind: KindHeartbeat, Status: StatusError, Count: 3, Error: "delivery to https://hooks.example.org/x failed 5 time(s)"}},
		{"event-empty", ContentEmpty, Notice{Kind: KindEvent, Status: StatusActive, Count: 1, Events: []fhirstore.Event{ev(1, "1", fhirstore.InteractionCreate)}}},
		{"event-id-only", ContentIDOnly, Notice{Kind: KindEvent, Status: StatusActive, Count: 1, Events: []fhirstore.Event{ev(1, "1", fhirstore.InteractionCreate)}}},
		{"event-full-resource", ContentFullResource, Notice{Kind: KindEvent, Status: StatusActive, Count: 1, Events: []fhirstore.Event{ev(1, "1", fhirstore.InteractionCreate)}}},
		{"event-full-resource-batch", ContentFullResource, Notice{Kind: KindEvent, Status: StatusActive, Count: 3, Events: []fhirstore.Event{
			ev(2, "2", fhirstore.InteractionUpdate), ev(3, "3", fhirstore.InteractionDelete)}}},
		{"query-event", ContentFullResource, Notice{Kind: KindQueryEvent, Status: StatusActive, Count: 3, Content: ContentIDOnly, Events: []fhirstore.Event{
			ev(1, "1", fhirstore.InteractionCreate), ev(2, "2", fhirstore.InteractionUpdate)}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, _ := goldenManager(t)
			b, err := m.Notification(context.Background(), goldenSub(m, tc.content), tc.notice)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, tc.name, b)
		})
	}
	t.Run("query-status", func(t *testing.T) {
		m, _ := goldenManager(t)
		s := goldenSub(m, ContentIDOnly)
		m.reg.put(s, 0)
		b, err := m.StatusBundle(context.Background(), []string{"s1"}, nil, "https://fhir.example.org/r4/Subscription/s1/$status")
		if err != nil {
			t.Fatal(err)
		}
		golden(t, "query-status", b)
	})
}

func golden(t *testing.T, name string, v any) {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", name+".golden.json")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run TestNotificationGolden -update)", err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("%s differs from the golden file (-update rewrites it):\n%s", path, buf.String())
	}
	// The bytes a channel sends are the golden file's, compacted: the
	// typed Bundle encodes its fields in the order the map form's sorted
	// keys gave.
	sent, err := EncodeBundle(v)
	if err != nil {
		t.Fatal(err)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, want); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sent, compact.Bytes()) {
		t.Errorf("EncodeBundle of %s differs from the compacted golden file:\n got %s\nwant %s", name, sent, compact.Bytes())
	}
}
