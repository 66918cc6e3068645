package topics_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/fhirsub/fhirsub/topics"
)

func versioned(tb testing.TB, url, version, rt string) *topics.Topic {
	tb.Helper()
	return mustParse(tb, fmt.Sprintf(`{"resourceType":"SubscriptionTopic","url":%q,"version":%q,"status":"active",
		"resourceTrigger":[{"resource":%q}]}`, url, version, rt))
}

func TestRegistry(t *testing.T) {
	r := topics.NewRegistry()
	for _, tp := range topics.BuiltIn() {
		r.Put(tp)
	}
	all := r.All()
	if len(all) != 6 {
		t.Fatalf("All() has %d topics", len(all))
	}
	for i := 1; i < len(all); i++ {
		if all[i-1].URL >= all[i].URL {
			t.Errorf("All() not sorted: %s before %s", all[i-1].URL, all[i].URL)
		}
	}
	obs := r.ByResourceType("Observation")
	if len(obs) != 2 || obs[0].EventType != "critical_result" || obs[1].EventType != "result_available" {
		t.Errorf("ByResourceType(Observation) = %v", urls(obs))
	}
	if got := r.ByResourceType("Patient"); len(got) != 0 {
		t.Errorf("ByResourceType(Patient) = %v", urls(got))
	}
	u := topics.BuiltInBase + "task"
	if tp, ok := r.Get(u); !ok || tp.URL != u {
		t.Errorf("Get(%s) = %v, %v", u, tp, ok)
	}
	if tp, ok := r.Get(u + "|1.0.0"); !ok || tp.URL != u {
		t.Errorf("Get(url|version) = %v, %v", tp, ok)
	}
	if _, ok := r.Get(u + "|9"); ok {
		t.Error("Get of an unknown version succeeded")
	}
	r.Remove(u)
	if _, ok := r.Get(u); ok {
		t.Error("Get after Remove succeeded")
	}
	if len(r.ByResourceType("Task")) != 0 || len(r.All()) != 5 {
		t.Error("index not updated after Remove")
	}
}

func TestRegistryVersions(t *testing.T) {
	r := topics.NewRegistry()
	const u = "http://example.org/t"
	r.Put(versioned(t, u, "1", "Encounter"))
	r.Put(versioned(t, u, "2", "Observation"))
	if tp, _ := r.Get(u); tp.Version != "2" {
		t.Errorf("Get(url) = version %s, want the latest put", tp.Version)
	}
	if tp, ok := r.Get(u + "|1"); !ok || tp.Version != "1" {
		t.Errorf("Get(url|1) = %v, %v", tp, ok)
	}
	if len(r.ByResourceType("Encounter")) != 0 || len(r.ByResourceType("Observation")) != 1 {
		t.Error("ByResourceType should follow the current version")
	}
	r.Remove(u + "|2")
	if tp, ok := r.Get(u); !ok || tp.Version != "1" {
		t.Errorf("after removing version 2, Get(url) = %v, %v", tp, ok)
	}
	r.Remove(u)
	if _, ok := r.Get(u + "|1"); ok || len(r.All()) != 0 {
		t.Error("Remove(url) should remove every version")
	}
	r.Put(nil) // ignored
	if len(r.All()) != 0 {
		t.Error("Put(nil) added something")
	}
}

func TestRegistryConcurrent(t *testing.T) {
	r := topics.NewRegistry()
	builtIn := topics.BuiltIn()
	extra := make([]*topics.Topic, 20)
	for i := range extra {
		extra[i] = versioned(t, fmt.Sprintf("http://example.org/t%d", i), "1", "Encounter")
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(2)
		go func() { // writer
			defer wg.Done()
			for i := range 200 {
				tp := extra[(i+w)%len(extra)]
				r.Put(tp)
				r.Put(builtIn[i%len(builtIn)])
				if i%3 == 0 {
					r.Remove(tp.URL)
				}
			}
		}()
		go func() { // reader
			defer wg.Done()
			for i := range 200 {
				for _, tp := range r.ByResourceType("Encounter") {
					if tp.ResourceTypes()[0] != "Encounter" {
						t.Errorf("ByResourceType(Encounter) returned %s", tp.URL)
						return
					}
				}
				r.All()
				r.Get(builtIn[i%len(builtIn)].URL)
			}
		}()
	}
	wg.Wait()
	for _, tp := range builtIn {
		if got, ok := r.Get(tp.URL); !ok || got != tp {
			t.Errorf("%s missing after concurrent use", tp.URL)
		}
	}
}

func urls(ts []*topics.Topic) []string {
	out := make([]string, len(ts))
	for i, tp := range ts {
		out[i] = tp.URL
	}
	return out
}
