package web_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestSearchAllTypes: GET /?params searches every type with parameters all
// resources share, pages over the types' results in type name order, and
// refuses what needs one order or one graph across types.
func TestSearchAllTypes(t *testing.T) {
	s := mustServer(t)
	tag := map[string]any{"tag": []any{map[string]any{"system": "http://example.org/t", "code": "x"}}}
	p := patient("Tagged")
	p["meta"] = tag
	pid := str(s.do("POST", "/Patient", p).wantStatus(t, http.StatusCreated).JSON, "id")
	o := observation("Patient/"+pid, "8867-4", "2024-01-01")
	o["meta"] = tag
	oid := str(s.do("POST", "/Observation", o).wantStatus(t, http.StatusCreated).JSON, "id")
	s.do("POST", "/Patient", patient("Untagged")).wantStatus(t, http.StatusCreated)

	ids := func(r *response) string {
		var out []string
		for _, e := range r.JSON["entry"].([]any) {
			res := e.(map[string]any)["resource"].(map[string]any)
			out = append(out, res["resourceType"].(string)+"/"+res["id"].(string))
		}
		return strings.Join(out, " ")
	}
	const q = "_tag=http://example.org/t|x"
	r := s.do("GET", "/?"+q, nil).wantStatus(t, http.StatusOK)
	if str(r.JSON, "type") != "searchset" || str(r.JSON, "total") != "2" || ids(r) != "Observation/"+oid+" Patient/"+pid {
		t.Fatalf("GET /?%s: %s", q, r.Body)
	}
	r = s.do("GET", "/?"+q+"&_count=1&_offset=1", nil).wantStatus(t, http.StatusOK)
	if str(r.JSON, "total") != "2" || ids(r) != "Patient/"+pid || !strings.Contains(string(r.Body), `"previous"`) {
		t.Errorf("second page: %s", r.Body)
	}
	r = s.do("GET", "/?"+q+"&_count=1", nil).wantStatus(t, http.StatusOK)
	if ids(r) != "Observation/"+oid || !strings.Contains(string(r.Body), `"next"`) {
		t.Errorf("first page: %s", r.Body)
	}
	r = s.do("GET", "/?"+q+"&_type=Patient", nil).wantStatus(t, http.StatusOK)
	if ids(r) != "Patient/"+pid {
		t.Errorf("_type=Patient: %s", r.Body)
	}
	r = s.do("POST", "/_search", q, "Content-Type", "application/x-www-form-urlencoded").wantStatus(t, http.StatusOK)
	if str(r.JSON, "total") != "2" {
		t.Errorf("POST /_search: %s", r.Body)
	}
	r = s.do("GET", "/?"+q+"&_summary=count", nil).wantStatus(t, http.StatusOK)
	if str(r.JSON, "total") != "2" || r.JSON["entry"] != nil {
		t.Errorf("_summary=count: %s", r.Body)
	}
	r = s.do("GET", "/?_type=Patient,Practitioner&name=Untagged", nil).wantStatus(t, http.StatusOK)
	if str(r.JSON, "total") != "1" {
		t.Errorf("a parameter both _types have: %s", r.Body)
	}
	s.do("GET", "/?name=Untagged", nil).wantOutcome(t, http.StatusBadRequest, "name", "_type")
	s.do("GET", "/?_sort=_lastUpdated", nil).wantOutcome(t, http.StatusBadRequest, "_sort", "search one type")
	s.do("GET", "/?_include=Observation:subject", nil).wantOutcome(t, http.StatusBadRequest, "_include")
	s.do("GET", "/?_type=Spaceship", nil).wantOutcome(t, http.StatusBadRequest, "Spaceship")
	s.do("GET", "/?_count=-1", nil).wantOutcome(t, http.StatusBadRequest, "_count")
}
