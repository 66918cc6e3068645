package storetest

import (
	"net/url"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/fhirsub/fhirsub/conformance/search"
	"github.com/fhirsub/fhirsub/fhirstore"
)

// searchFixture stores three patients and three observations under fixed
// ids.
func searchFixture(t *testing.T, st fhirstore.Store) {
	t.Helper()
	for id, js := range map[string]string{
		"p1": `{"resourceType":"Patient","name":[{"family":"Smith","given":["John"]}],"gender":"male",
			"birthDate":"1980-05-01","identifier":[{"system":"http://hosp.example/mrn","value":"MRN1"}]}`,
		"p2": `{"resourceType":"Patient","name":[{"family":"Smythe","given":["Jane"]}],"gender":"female","birthDate":"1990-01-15"}`,
		"p3": `{"resourceType":"Patient","name":[{"family":"Jones"}],"gender":"female","birthDate":"1975-12-31"}`,
		"o1": `{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"1234-5"}]},
			"subject":{"reference":"Patient/p1"},"effectiveDateTime":"2024-01-10"}`,
		"o2": `{"resourceType":"Observation","status":"preliminary","code":{"coding":[{"system":"http://loinc.org","code":"1234-5"}]},
			"subject":{"reference":"Patient/p2"},"effectiveDateTime":"2024-02-20T08:30:00Z"}`,
		"o3": `{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://snomed.info/sct","code":"999"}]},
			"subject":{"reference":"Patient/p1"},"effectiveDateTime":"2023-12-31T23:00:00Z"}`,
	} {
		mustUpdate(t, st, id, body(t, js), "")
	}
}

// searchIDs runs Type?query and returns the ids on the page, and Total.
func searchIDs(t *testing.T, st fhirstore.Store, typ, query string) ([]string, int) {
	t.Helper()
	params, err := url.ParseQuery(query)
	if err != nil {
		t.Fatalf("bad test query %q: %v", query, err)
	}
	q, err := search.Parse(typ, params)
	if err != nil {
		t.Fatalf("Parse %s?%s: %v", typ, query, err)
	}
	page, err := st.Search(ctxFor(t), q)
	if err != nil {
		t.Fatalf("Search %s?%s: %v", typ, query, err)
	}
	ids := make([]string, len(page.Resources))
	for i, r := range page.Resources {
		if r.Type != typ || r.Deleted || r.Body == nil {
			t.Fatalf("Search %s?%s returned %+v", typ, query, r)
		}
		ids[i] = r.ID
	}
	return ids, page.Total
}

type searchCase struct {
	typ, query string
	want       []string // in result order (by id unless sorted)
}

func runSearchCases(t *testing.T, st fhirstore.Store, cases []searchCase) {
	t.Helper()
	for _, tc := range cases {
		got, total := searchIDs(t, st, tc.typ, tc.query)
		if !equalStrings(got, tc.want) || total != len(tc.want) {
			t.Errorf("%s?%s = %v (total %d), want %v", tc.typ, tc.query, got, total, tc.want)
		}
	}
}

func (s *suite) testSearchToken(t *testing.T) {
	st := s.store(t)
	searchFixture(t, st)
	runSearchCases(t, st, []searchCase{
		{"Observation", "code=http://loinc.org|1234-5", []string{"o1", "o2"}},
		{"Observation", "code=1234-5", []string{"o1", "o2"}},
		{"Observation", "code=http://snomed.info/sct|1234-5", nil},
		{"Observation", "code=http://snomed.info/sct|999,http://loinc.org|1234-5", []string{"o1", "o2", "o3"}},
		{"Observation", "status=final", []string{"o1", "o3"}},
		{"Observation", "status=final,preliminary", []string{"o1", "o2", "o3"}},
		{"Observation", "code=1234-5&status=final", []string{"o1"}},
		{"Observation", "status=amended", nil},
		{"Patient", "gender=female", []string{"p2", "p3"}},
		{"Patient", "identifier=http://hosp.example/mrn|MRN1", []string{"p1"}},
		{"Patient", "identifier=MRN1", []string{"p1"}},
		{"Patient", "identifier=http://other|MRN1", nil},
	})
}

func (s *suite) testSearchReference(t *testing.T) {
	st := s.store(t)
	searchFixture(t, st)
	runSearchCases(t, st, []searchCase{
		{"Observation", "subject=Patient/p1", []string{"o1", "o3"}},
		{"Observation", "subject=Patient/p2", []string{"o2"}},
		{"Observation", "subject=Patient/p1,Patient/p2&code=999", []string{"o3"}},
		{"Observation", "subject=Patient/p9", nil},
	})
}

func (s *suite) testSearchDate(t *testing.T) {
	st := s.store(t)
	searchFixture(t, st)
	runSearchCases(t, st, []searchCase{
		{"Observation", "date=ge2024-01-01", []string{"o1", "o2"}},
		{"Observation", "date=lt2024", []string{"o3"}},
		{"Observation", "date=2024-02", []string{"o2"}},
		{"Observation", "date=ge2024-01-01&date=lt2024-02", []string{"o1"}},
		{"Patient", "birthdate=1980-05-01", []string{"p1"}},
		{"Patient", "birthdate=lt1985", []string{"p1", "p3"}},
		{"Patient", "birthdate=gt2000", nil},
	})
}

func (s *suite) testSearchString(t *testing.T) {
	st := s.store(t)
	searchFixture(t, st)
	runSearchCases(t, st, []searchCase{
		{"Patient", "name=smi", []string{"p1"}},
		{"Patient", "name=sm", []string{"p1", "p2"}},
		{"Patient", "name=JOHN", []string{"p1"}},
		{"Patient", "family=jones", []string{"p3"}},
		{"Patient", "family:exact=Smith", []string{"p1"}},
		{"Patient", "family:exact=smith", nil},
		{"Patient", "family=smi,jon", []string{"p1", "p3"}},
		{"Patient", "family=smith&gender=female", nil},
	})
}

func (s *suite) testSearchIDAndLastUpdated(t *testing.T) {
	st := s.store(t)
	mustUpdate(t, st, "early", patient(t, "Early"), "")
	time.Sleep(10 * time.Millisecond)
	mark := fhirstore.FormatInstant(fhirstore.Now())
	time.Sleep(10 * time.Millisecond)
	mustUpdate(t, st, "late", patient(t, "Late"), "")
	mustUpdate(t, st, "other", patient(t, "Other"), "")
	runSearchCases(t, st, []searchCase{
		{"Patient", "_id=early", []string{"early"}},
		{"Patient", "_id=late,other,missing", []string{"late", "other"}},
		{"Patient", "_id=missing", nil},
		{"Patient", "_lastUpdated=gt" + mark, []string{"late", "other"}},
		{"Patient", "_lastUpdated=lt" + mark, []string{"early"}},
		{"Patient", "_lastUpdated=lt" + mark + "&_id=late", nil},
	})
}

func (s *suite) testSearchPaging(t *testing.T) {
	st := s.store(t)
	ctx := ctxFor(t)
	const n = 57
	ops := make([]fhirstore.Op, n)
	for i := range ops {
		ops[i] = fhirstore.Op{Method: fhirstore.MethodCreate, Body: patient(t, "Pager")}
	}
	if _, err := st.Transaction(ctx, ops); err != nil {
		t.Fatalf("Transaction: %v", err)
	}
	mustCreate(t, st, patient(t, "Other"))
	all, total := searchIDs(t, st, "Patient", "family=pager&_count=1000")
	if total != n || len(all) != n || !sort.StringsAreSorted(all) {
		t.Fatalf("family=pager: %d results (total %d), sorted by id %v; want %d", len(all), total, sort.StringsAreSorted(all), n)
	}
	if got, total := searchIDs(t, st, "Patient", "family=pager"); total != n || len(got) != fhirstore.DefaultCount {
		t.Errorf("default page: %d results, total %d; want %d of %d", len(got), total, fhirstore.DefaultCount, n)
	}
	var paged []string
	for offset := 0; offset < n+10; offset += 10 {
		got, total := searchIDs(t, st, "Patient", "family=pager&_count=10&_offset="+strconv.Itoa(offset))
		if total != n {
			t.Fatalf("page at offset %d: total %d, want %d", offset, total, n)
		}
		if want := min(10, max(0, n-offset)); len(got) != want {
			t.Fatalf("page at offset %d: %d results, want %d", offset, len(got), want)
		}
		paged = append(paged, got...)
	}
	if !equalStrings(paged, all) {
		t.Errorf("pages concatenated differ from the full result")
	}
}

func (s *suite) testSearchSort(t *testing.T) {
	st := s.store(t)
	searchFixture(t, st)
	runSearchCases(t, st, []searchCase{
		{"Patient", "_sort=birthdate", []string{"p3", "p1", "p2"}},
		{"Patient", "_sort=-birthdate", []string{"p2", "p1", "p3"}},
		{"Patient", "_sort=family", []string{"p3", "p1", "p2"}},
		{"Observation", "_sort=-date&status=final", []string{"o1", "o3"}},
		{"Observation", "_sort=status", []string{"o1", "o3", "o2"}},
	})
	if got, total := searchIDs(t, st, "Patient", "_sort=-birthdate&_count=2&_offset=1"); total != 3 || !equalStrings(got, []string{"p1", "p3"}) {
		t.Errorf("sorted second page = %v (total %d), want [p1 p3] (total 3)", got, total)
	}
}

func (s *suite) testSearchLiveVersionsOnly(t *testing.T) {
	st := s.store(t)
	searchFixture(t, st)
	mustUpdate(t, st, "p1", body(t, `{"resourceType":"Patient","name":[{"family":"Brown"}],"gender":"male"}`), "")
	mustDelete(t, st, "Patient", "p3")
	mustDelete(t, st, "Observation", "o2")
	runSearchCases(t, st, []searchCase{
		{"Patient", "family=smith", nil},
		{"Patient", "family=brown", []string{"p1"}},
		{"Patient", "gender=female", []string{"p2"}},
		{"Patient", "", []string{"p1", "p2"}},
		{"Observation", "code=1234-5", []string{"o1"}},
	})
	mustUpdate(t, st, "p3", body(t, `{"resourceType":"Patient","name":[{"family":"Jones"}],"gender":"female"}`), "")
	runSearchCases(t, st, []searchCase{{"Patient", "gender=female", []string{"p2", "p3"}}})
}
