package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestSearchAndPaging(t *testing.T) {
	s := mustServer(t)
	p := s.do("POST", "/Patient", patient("Search")).wantStatus(t, http.StatusCreated)
	pid := "Patient/" + str(p.JSON, "id")
	for i, c := range []struct{ code, date string }{
		{"8867-4", "2024-03-01T10:00:00Z"}, {"8867-4", "2023-12-31"}, {"8310-5", "2024-05-01"},
		{"8867-4", "2024-06-01"}, {"8867-4", "2025-01-02"},
	} {
		s.do("POST", "/Observation", observation(pid, c.code, c.date)).wantStatus(t, http.StatusCreated)
		_ = i
	}
	s.do("POST", "/Observation", observation("Patient/someone-else", "8867-4", "2024-03-01")).wantStatus(t, http.StatusCreated)

	q := "/Observation?subject=" + pid + "&code=" + url.QueryEscape("http://loinc.org|8867-4") + "&date=ge2024-01-01"
	r := s.do("GET", q, nil).wantStatus(t, http.StatusOK)
	if str(r.JSON, "type") != "searchset" || str(r.JSON, "total") != "3" {
		t.Fatalf("search total: %s", r.Body)
	}
	for i := 0; i < 3; i++ {
		if str(r.JSON, "entry", i, "search", "mode") != "match" || !strings.HasPrefix(str(r.JSON, "entry", i, "fullUrl"), s.URL+"/Observation/") {
			t.Errorf("entry %d: %s", i, str(r.JSON, "entry", i))
		}
	}

	// Paging: 3 matches, 2 per page.
	r = s.do("GET", q+"&_count=2&_sort=date", nil).wantStatus(t, http.StatusOK)
	if n := len(r.JSON["entry"].([]any)); n != 2 {
		t.Fatalf("page 1 has %d entries", n)
	}
	if str(r.JSON, "entry", 0, "resource", "effectiveDateTime") != "2024-03-01T10:00:00Z" {
		t.Errorf("_sort=date: first is %s", str(r.JSON, "entry", 0, "resource", "effectiveDateTime"))
	}
	next := link(r.JSON, "next")
	if next == "" {
		t.Fatalf("no next link: %s", r.Body)
	}
	r2 := s.do("GET", strings.TrimPrefix(next, s.URL), nil).wantStatus(t, http.StatusOK)
	if n := len(r2.JSON["entry"].([]any)); n != 1 || link(r2.JSON, "next") != "" || link(r2.JSON, "previous") == "" {
		t.Fatalf("page 2: %s", r2.Body)
	}
	if str(r2.JSON, "entry", 0, "resource", "effectiveDateTime") != "2025-01-02" {
		t.Errorf("page 2 holds %s", str(r2.JSON, "entry", 0, "resource", "effectiveDateTime"))
	}

	// POST _search with a form body gives the same answer.
	req, _ := http.NewRequest("POST", s.URL+"/Observation/_search", strings.NewReader(
		"subject="+url.QueryEscape(pid)+"&code="+url.QueryEscape("http://loinc.org|8867-4")+"&date=ge2024-01-01"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST _search: %d", resp.StatusCode)
	}

	// Patient name search, type history and system history.
	r = s.do("GET", "/Patient?name=sea", nil).wantStatus(t, http.StatusOK)
	if str(r.JSON, "total") != "1" {
		t.Errorf("name=sea: %s", r.Body)
	}
	r = s.do("GET", "/Observation/_history?_count=2", nil).wantStatus(t, http.StatusOK)
	if str(r.JSON, "total") != "6" || len(r.JSON["entry"].([]any)) != 2 || link(r.JSON, "next") == "" {
		t.Errorf("type history: %s", r.Body)
	}
	r = s.do("GET", "/_history", nil).wantStatus(t, http.StatusOK)
	if str(r.JSON, "total") != "7" {
		t.Errorf("system history total: %s", str(r.JSON, "total"))
	}
}

func link(bundle map[string]any, rel string) string {
	links, _ := bundle["link"].([]any)
	for _, l := range links {
		m := l.(map[string]any)
		if m["relation"] == rel {
			return m["url"].(string)
		}
	}
	return ""
}

// TestPostSearchTakesAFormOnly: a POST _search body that is not a form
// would be ignored and the search would answer for every resource; it is
// refused. Parameters in the URL with an empty body still search.
func TestPostSearchTakesAFormOnly(t *testing.T) {
	s := mustServer(t)
	for _, name := range []string{"Formed", "Other"} {
		s.do("POST", "/Patient", patient(name)).wantStatus(t, http.StatusCreated)
	}
	s.do("POST", "/Patient/_search", "name=Formed").wantOutcome(t, http.StatusUnsupportedMediaType, "application/x-www-form-urlencoded", "application/fhir+json")
	s.do("POST", "/Patient/_search", `{"name":"Formed"}`, "Content-Type", "application/json").wantOutcome(t, http.StatusUnsupportedMediaType)
	for _, c := range []struct {
		name, path string
		body       any
		headers    []string
	}{
		{"form body", "/Patient/_search", "name=Formed", []string{"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"}},
		{"URL, empty body", "/Patient/_search?name=Formed", nil, nil},
		{"URL, empty JSON-typed body", "/Patient/_search?name=Formed", " ", nil},
	} {
		r := s.do("POST", c.path, c.body, c.headers...).wantStatus(t, http.StatusOK)
		if str(r.JSON, "total") != "1" {
			t.Errorf("%s: total %s, want 1: %s", c.name, str(r.JSON, "total"), r.Body)
		}
	}
}

// TestSearchLenient: parameters the server does not know or support are
// refused, unless the client sends Prefer: handling=lenient; then they
// are ignored, the links show what was used, and an outcome entry names
// them. A bad value of a known parameter is refused either way.
func TestSearchLenient(t *testing.T) {
	s := mustServer(t)
	for _, name := range []string{"Lenient", "Other"} {
		s.do("POST", "/Patient", patient(name)).wantStatus(t, http.StatusCreated)
	}
	const q = "/Patient?name=Lenient&bogus=1&name:sounds-like=x&organization.bogus=y"
	s.do("GET", q, nil).wantOutcome(t, http.StatusBadRequest)
	s.do("GET", q, nil, "Prefer", "handling=strict").wantOutcome(t, http.StatusBadRequest)
	for _, prefer := range []string{"handling=lenient", "return=minimal, handling=lenient", `return=minimal; handling="lenient"`} {
		r := s.do("GET", q, nil, "Prefer", prefer).wantStatus(t, http.StatusOK)
		if str(r.JSON, "total") != "1" {
			t.Fatalf("Prefer %s: total %s, want 1 (name=Lenient applied): %s", prefer, str(r.JSON, "total"), r.Body)
		}
		entries, _ := r.JSON["entry"].([]any)
		if len(entries) != 2 || str(r.JSON, "entry", 0, "resource", "resourceType") != "Patient" ||
			str(r.JSON, "entry", 1, "search", "mode") != "outcome" || str(r.JSON, "entry", 1, "resource", "resourceType") != "OperationOutcome" {
			t.Fatalf("Prefer %s: want the Patient then an outcome entry: %s", prefer, r.Body)
		}
		for _, p := range []string{"bogus", "name:sounds-like", "organization.bogus"} {
			found := false
			for i := range 3 {
				found = found || str(r.JSON, "entry", 1, "resource", "issue", i, "expression", 0) == p
			}
			if !found {
				t.Errorf("Prefer %s: the outcome does not name %s: %s", prefer, p, r.Body)
			}
		}
		if self := link(r.JSON, "self"); strings.Contains(self, "bogus") || strings.Contains(self, "sounds-like") || !strings.Contains(self, "name=Lenient") {
			t.Errorf("Prefer %s: self link %s; want the parameters used only", prefer, self)
		}
	}
	r := s.do("GET", "/Patient?bogus=1&_summary=count", nil, "Prefer", "handling=lenient").wantStatus(t, http.StatusOK)
	if str(r.JSON, "total") != "2" || str(r.JSON, "entry", 0, "search", "mode") != "outcome" {
		t.Errorf("_summary=count, lenient: %s", r.Body)
	}
	s.do("GET", "/Patient?bogus=1&birthdate=2021-13", nil, "Prefer", "handling=lenient").wantOutcome(t, http.StatusBadRequest, "birthdate")
}
