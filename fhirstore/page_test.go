package fhirstore_test

import (
	"net/url"
	"testing"

	"github.com/fhirsub/fhirsub/conformance/search"
	"github.com/fhirsub/fhirsub/fhirstore"
)

func TestSearchPage(t *testing.T) {
	mk := func(typ, id, family, birth string, deleted bool) *fhirstore.Resource {
		r := &fhirstore.Resource{Type: typ, ID: id, VersionID: "1", Deleted: deleted}
		if !deleted {
			r.Body = []byte(`{"resourceType":"` + typ + `","id":"` + id + `","name":[{"family":"` + family + `"}],"birthDate":"` + birth + `"}`)
		}
		return r
	}
	candidates := []*fhirstore.Resource{
		mk("Patient", "c", "Smith", "1990", false),
		mk("Patient", "a", "Smith", "1980", false),
		mk("Patient", "d", "Jones", "1970", false),
		mk("Patient", "b", "Smithers", "2000", false),
		mk("Patient", "e", "", "", true),
		mk("Group", "f", "Smith", "1960", false),
		nil,
	}
	tests := []struct {
		query string
		want  []string
		total int
	}{
		{"family=smith", []string{"a", "b", "c"}, 3},
		{"family=smith&_sort=-birthdate", []string{"b", "c", "a"}, 3},
		{"family=smith&_sort=birthdate&_count=2&_offset=1", []string{"c", "b"}, 3},
		{"_count=2", []string{"a", "b"}, 4},
		{"_offset=9", []string{}, 4},
		{"family=nobody", []string{}, 0},
	}
	for _, tc := range tests {
		params, _ := url.ParseQuery(tc.query)
		q, err := search.Parse("Patient", params)
		if err != nil {
			t.Fatalf("Parse %s: %v", tc.query, err)
		}
		page, err := fhirstore.SearchPage(q, candidates)
		if err != nil {
			t.Fatalf("SearchPage %s: %v", tc.query, err)
		}
		got := []string{}
		for _, r := range page.Resources {
			got = append(got, r.ID)
		}
		if page.Total != tc.total || len(got) != len(tc.want) {
			t.Errorf("%s = %v total %d, want %v total %d", tc.query, got, page.Total, tc.want, tc.total)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("%s = %v, want %v", tc.query, got, tc.want)
				break
			}
		}
	}
	q, _ := search.Parse("Patient", url.Values{})
	if _, err := fhirstore.SearchPage(q, []*fhirstore.Resource{{Type: "Patient", ID: "x", Body: []byte("{bad")}}); err == nil {
		t.Errorf("SearchPage accepted a corrupt body")
	}
}
