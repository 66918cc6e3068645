package search_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/fhirsub/fhirsub/conformance/search"
)

func TestKeys(t *testing.T) {
	tests := []struct {
		file   string
		want   []search.Key
		absent []search.Key
	}{
		{
			file: "observation-bp.json",
			want: []search.Key{
				{"_id", "bp-1"}, {"_id", "|bp-1"},
				{"code", "http://loinc.org|85354-9"}, {"code", "85354-9"},
				{"combo-code", "8480-6"}, {"component-code", "http://loinc.org|8462-4"},
				{"status", "final"}, {"status", "|final"},
				{"subject", "Patient/pat-1"}, {"patient", "Patient/pat-1"},
				{"performer", "Practitioner/prac-1"}, {"performer", "Patient/pat-1"},
				{"encounter", "Encounter/enc-1"}, {"based-on", "ServiceRequest/sr-9"},
				{"_tag", "http://example.org/tags|ward-7"}, {"_security", "N"},
				{"_profile", "http://hl7.org/fhir/StructureDefinition/vitalsigns"},
				{"_source", "http://monitor.example.org/device/42"},
				{"identifier", "urn:ietf:rfc:3986|urn:uuid:187e0c12-8dd2-67e2-99b2-bf273c878281"},
			},
			absent: []search.Key{{"code", "|85354-9"}, {"date", "2024-03-01"}},
		},
		{
			file: "observation-glucose.json",
			want: []search.Key{
				{"specimen", "urn:uuid:6b8f2e3a-1c1b-4c3e-9e0f-4a1f6f0d7e21"},
				{"code", "http://snomed.info/sct|33747003"},
				{"performer", "Organization/lab-1"},
			},
		},
		{
			file: "condition.json",
			want: []search.Key{{"subject", "Patient/pat-2"}, {"patient", "Patient/pat-2"}, {"evidence-detail", "Observation/glu-7"}},
		},
		{
			file: "medicationrequest.json",
			want: []search.Key{{"subject", "Patient/pat-2"}, {"intent", "order"}, {"code", "860975"}},
		},
		{
			file: "patient.json",
			want: []search.Key{
				{"active", "true"}, {"gender", "female"}, {"email", "email|amelie.dupont@example.fr"},
				{"identifier", "urn:oid:1.2.36.146.595.217.0.1|12345"}, {"language", "urn:ietf:bcp:47|fr-FR"},
				{"general-practitioner", "Practitioner/prac-1"}, {"organization", "Organization/org-1"},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			keys, err := search.Keys(mustLoad(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.IsSortedFunc(keys, func(a, b search.Key) int {
				if a.Param != b.Param {
					return compare(a.Param, b.Param)
				}
				return compare(a.Value, b.Value)
			}) {
				t.Error("keys are not sorted")
			}
			if len(slices.Compact(slices.Clone(keys))) != len(keys) {
				t.Error("keys have duplicates")
			}
			for _, k := range tc.want {
				if !slices.Contains(keys, k) {
					t.Errorf("missing key %v in %v", k, keys)
				}
			}
			for _, k := range tc.absent {
				if slices.Contains(keys, k) {
					t.Errorf("unexpected key %v", k)
				}
			}
		})
	}
}

func compare(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func TestKeysUnknownType(t *testing.T) {
	for _, res := range []map[string]any{{}, {"resourceType": "Nope"}, {"resourceType": 5}} {
		if _, err := search.Keys(res); !errors.Is(err, search.ErrUnknownType) {
			t.Errorf("Keys(%v) error = %v, want ErrUnknownType", res, err)
		}
	}
}

func TestNarrow(t *testing.T) {
	tests := []struct {
		criteria string
		want     [][]search.Key
	}{
		{"Observation?code=http://loinc.org|1,2&subject=Patient/7", [][]search.Key{
			{{"code", "http://loinc.org|1"}, {"code", "2"}}, {{"subject", "Patient/7"}}}},
		{"Observation?code=|x", [][]search.Key{{{"code", "|x"}}}},
		{"Observation?code=http://loinc.org|", nil},
		{"Observation?code:not=1&code:text=x&status:missing=true", nil},
		{"Observation?date=2024&value-quantity=5&code-value-quantity=1$2", nil},
		{"Observation?subject:Patient=7", [][]search.Key{{{"subject", "Patient/7"}}}},
		{"Observation?subject=https://x.org/fhir/Patient/7/_history/2", [][]search.Key{{{"subject", "Patient/7"}}}},
		{"Observation?encounter=e1", [][]search.Key{{{"encounter", "Encounter/e1"}, {"encounter", "EpisodeOfCare/e1"}}}}, // targets shared by every base
		{"Observation?_id=a&_profile=http://p", [][]search.Key{{{"_id", "a"}}, {{"_profile", "http://p"}}}},
		{"Patient?name=x&family:exact=y", nil},
		{"Observation?_count=5&_sort=date", nil},
	}
	for _, tc := range tests {
		t.Run(tc.criteria, func(t *testing.T) {
			q, err := search.ParseCriteria(tc.criteria)
			if err != nil {
				t.Fatal(err)
			}
			got := q.Narrow()
			if len(got) != len(tc.want) {
				t.Fatalf("Narrow = %v, want %v", got, tc.want)
			}
			for i := range got {
				if !slices.Equal(got[i], tc.want[i]) {
					t.Errorf("group %d = %v, want %v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestPatientIDs(t *testing.T) {
	tests := []struct {
		file string
		want []string
	}{
		{"patient.json", []string{"pat-1"}},
		{"observation-bp.json", []string{"pat-1"}}, // subject and the absolute versioned performer, deduplicated
		{"observation-glucose.json", []string{"pat-2"}},
		{"condition.json", []string{"pat-2"}},
		{"medicationrequest.json", []string{"pat-2"}},
		{"encounter.json", []string{"pat-1"}},
		{"diagnosticreport.json", []string{"pat-2"}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			if got := search.PatientIDs(mustLoad(t, tc.file)); !slices.Equal(got, tc.want) {
				t.Errorf("PatientIDs = %v, want %v", got, tc.want)
			}
		})
	}
	group := map[string]any{"resourceType": "Observation", "subject": map[string]any{"reference": "Group/g1"}}
	if got := search.PatientIDs(group); len(got) != 0 {
		t.Errorf("PatientIDs(subject=Group) = %v, want none", got)
	}
	if got := search.PatientIDs(map[string]any{"resourceType": "Organization", "id": "o"}); len(got) != 0 {
		t.Errorf("PatientIDs(Organization) = %v, want none", got)
	}
}

// TestConcurrentUse runs Keys, Match and Less from several goroutines on
// shared queries (meaningful under -race).
func TestConcurrentUse(t *testing.T) {
	all := mustLoadAll(t)
	q, err := search.ParseCriteria("Observation?code=85354-9,15074-8&date=ge2020&_sort=-date")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	for g := 0; g < 4; g++ {
		go func() {
			var err error
			for _, res := range all {
				if _, err = search.Keys(res); err != nil {
					break
				}
				if _, err = q.Match(res); err != nil {
					break
				}
				q.Less(res, all[0])
				search.PatientIDs(res)
			}
			done <- err
		}()
	}
	for g := 0; g < 4; g++ {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

// TestExtraTypeSubscriptionTopic covers the one non-R4 type the server
// stores: its R4B search parameters extract keys and match.
func TestExtraTypeSubscriptionTopic(t *testing.T) {
	topic := map[string]any{"resourceType": "SubscriptionTopic", "id": "t1", "url": "https://example.org/topic/a",
		"status": "active", "title": "Admissions", "resourceTrigger": []any{map[string]any{"resource": "Encounter"}}}
	keys, err := search.Keys(topic)
	if err != nil {
		t.Fatal(err)
	}
	want := map[search.Key]bool{{Param: "url", Value: "https://example.org/topic/a"}: false, {Param: "status", Value: "active"}: false, {Param: "_id", Value: "t1"}: false}
	for _, k := range keys {
		if _, ok := want[k]; ok {
			want[k] = true
		}
	}
	for k, seen := range want {
		if !seen {
			t.Errorf("Keys(SubscriptionTopic) lacks %v (got %v)", k, keys)
		}
	}
	for q, match := range map[string]bool{"url=https://example.org/topic/a": true, "status=retired": false, "title=adm": true, "resource=Encounter": true} {
		query, err := search.ParseCriteria("SubscriptionTopic?" + q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		if got, err := query.Match(topic); err != nil || got != match {
			t.Errorf("%s: match %v (%v), want %v", q, got, err, match)
		}
	}
}
