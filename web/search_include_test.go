package web_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// entryModes lists "mode:Type/id-family-or-code" of a searchset, for
// comparisons.
func entryIDs(r *response, mode string) []string {
	entries, _ := r.JSON["entry"].([]any)
	var out []string
	for _, e := range entries {
		if str(e, "search", "mode") == mode {
			out = append(out, str(e, "resource", "resourceType")+"/"+str(e, "resource", "id"))
		}
	}
	return out
}

func setOf(xs []string) map[string]bool {
	m := map[string]bool{}
	for _, x := range xs {
		m[x] = true
	}
	return m
}

func wantSet(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	g, w := setOf(got), setOf(want)
	ok := len(g) == len(w) && len(got) == len(want)
	for k := range w {
		ok = ok && g[k]
	}
	if !ok {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

func TestSearchIncludesChainsHas(t *testing.T) {
	s := mustServer(t)
	create := func(body map[string]any) string {
		return str(s.do("POST", "/"+body["resourceType"].(string), body).wantStatus(t, http.StatusCreated).JSON, "id")
	}
	org := create(map[string]any{"resourceType": "Organization", "name": "Acme Clinic"})
	p1b := patient("Smith")
	p1b["managingOrganization"] = map[string]any{"reference": "Organization/" + org}
	p1 := create(p1b)
	p2 := create(patient("Jones"))
	x1 := create(observation("Patient/"+p1, "8867-4", "2024-01-01"))
	x2 := create(observation("Patient/"+p2, "1234-5", "2024-01-02"))
	P := func(id string) string { return "Patient/" + id }
	O := func(id string) string { return "Observation/" + id }

	r := s.do("GET", "/Observation?_include=Observation:subject", nil).wantStatus(t, http.StatusOK)
	wantSet(t, "matches", entryIDs(r, "match"), O(x1), O(x2))
	wantSet(t, "includes", entryIDs(r, "include"), P(p1), P(p2))
	if str(r.JSON, "total") != "2" {
		t.Errorf("total counts includes: %s", r.Body)
	}
	r = s.do("GET", "/Observation?code=8867-4&_include=Observation:subject:Patient&_include:iterate=Patient:organization", nil).wantStatus(t, http.StatusOK)
	wantSet(t, "iterate includes", entryIDs(r, "include"), P(p1), "Organization/"+org)
	r = s.do("GET", "/Patient?_revinclude=Observation:subject", nil).wantStatus(t, http.StatusOK)
	wantSet(t, "revincludes", entryIDs(r, "include"), O(x1), O(x2))

	for q, want := range map[string][]string{
		"/Observation?subject:Patient.name=smith":                  {O(x1)},
		"/Observation?subject.name=jones":                          {O(x2)},
		"/Observation?subject:Patient.organization.name=acme":      {O(x1)},
		"/Observation?subject:Patient.organization.name=nowhere":   nil,
		"/Patient?_has:Observation:subject:code=1234-5":            {P(p2)},
		"/Patient?_has:Observation:patient:code=8867-4&name=smith": {P(p1)},
	} {
		r := s.do("GET", q, nil).wantStatus(t, http.StatusOK)
		wantSet(t, q, entryIDs(r, "match"), want...)
	}

	r = s.do("GET", "/Observation?_summary=count", nil).wantStatus(t, http.StatusOK)
	if str(r.JSON, "total") != "2" || r.JSON["entry"] != nil {
		t.Errorf("_summary=count: %s", r.Body)
	}
	r = s.do("GET", "/Observation?_count=0", nil).wantStatus(t, http.StatusOK)
	if str(r.JSON, "total") != "2" || r.JSON["entry"] != nil {
		t.Errorf("_count=0: %s", r.Body)
	}
	r = s.do("GET", "/Patient?_elements=gender&name=smith", nil).wantStatus(t, http.StatusOK)
	res, _ := r.JSON["entry"].([]any)[0].(map[string]any)["resource"].(map[string]any)
	if res["gender"] == nil || res["name"] != nil || res["id"] != p1 || !strings.Contains(str(res, "meta", "tag"), "SUBSETTED") {
		t.Errorf("_elements=gender: %v", res)
	}
	r = s.do("GET", "/Observation?_summary=true&code=8867-4", nil).wantStatus(t, http.StatusOK)
	res, _ = r.JSON["entry"].([]any)[0].(map[string]any)["resource"].(map[string]any)
	if res["code"] == nil || res["status"] == nil || res["valueQuantity"] == nil || res["id"] != x1 || !strings.Contains(str(res, "meta", "tag"), "SUBSETTED") {
		t.Errorf("_summary=true lost summary elements: %v", res)
	}
	obs := observation("Patient/"+p1, "8867-4", "2024-01-01")
	obs["note"] = []any{map[string]any{"text": "not in the summary"}}
	obs["text"] = map[string]any{"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>"}
	create(obs)
	r = s.do("GET", "/Observation?_summary=true&code=8867-4", nil).wantStatus(t, http.StatusOK)
	if strings.Contains(string(r.Body), "not in the summary") || strings.Contains(string(r.Body), "generated") {
		t.Errorf("_summary=true kept note or text: %s", r.Body)
	}
	r = s.do("GET", "/Observation?_summary=data&code=8867-4", nil).wantStatus(t, http.StatusOK)
	if !strings.Contains(string(r.Body), "not in the summary") || strings.Contains(string(r.Body), "generated") {
		t.Errorf("_summary=data must drop text only: %s", r.Body)
	}
	r = s.do("GET", "/Patient?_total=none", nil).wantStatus(t, http.StatusOK)
	if _, ok := r.JSON["total"]; ok {
		t.Errorf("_total=none still has a total: %s", r.Body)
	}
	// A batch GET entry takes the same parameters.
	batch := map[string]any{"resourceType": "Bundle", "type": "batch", "entry": []any{
		map[string]any{"request": map[string]any{"method": "GET", "url": "Observation?subject:Patient.name=smith&_include=Observation:subject"}},
	}}
	r = s.do("POST", "/", batch).wantStatus(t, http.StatusOK)
	if got := str(r.JSON, "entry", 0, "resource", "total"); got != "2" || !strings.Contains(string(r.Body), `"include"`) {
		t.Errorf("batch GET with chain and _include: %s", r.Body)
	}
	for _, bad := range []string{"/Observation?_include=*", "/Observation?code.text=x", "/Patient?_summary=short", "/Observation?_include=Observation:code"} {
		s.do("GET", bad, nil).wantStatus(t, http.StatusBadRequest)
	}
}

// TestSearchLinksRespectAccess: a patient's token never reaches another
// patient's data through _include, _revinclude, a chain or _has, and a
// chain or _has is no oracle on data the token may not see.
func TestSearchLinksRespectAccess(t *testing.T) {
	f := newAuthFixture(t)
	patA := "Bearer " + signHS(t, claims("patient/*.rs", "patient", f.patA))
	create := func(body map[string]any) string {
		r := f.srv.do("POST", "/Observation", body, "Authorization", f.admin).wantStatus(t, http.StatusCreated)
		return str(r.JSON, "id")
	}
	// A's Observation points at B (focus, outside the compartment rules);
	// B's secret Observation points at A.
	oab := observation("Patient/"+f.patA, "7777-7", "2024-03-03")
	oab["focus"] = []any{map[string]any{"reference": "Patient/" + f.patB}}
	create(oab)
	oba := observation("Patient/"+f.patB, "9999-9", "2024-03-03")
	oba["note"] = []any{map[string]any{"text": markerBObs}}
	oba["focus"] = []any{map[string]any{"reference": "Patient/" + f.patA}}
	obaID := create(oba)
	cases := []struct {
		q       string
		matches int // -1: any
	}{
		{"/Observation?_include=Observation:focus", -1},
		{"/Observation?_include=Observation:focus:Patient&_include:iterate=Patient:link", -1},
		{"/Observation?code=7777-7&_include=Observation:subject&_revinclude:iterate=Observation:focus", -1},
		{"/Patient?_revinclude=Observation:focus", -1},
		{"/Patient?_revinclude=Observation:subject", -1},
		{"/Observation?focus:Patient.name=" + markerB, 0},
		{"/Observation?focus.name=" + markerB, 0},
		{"/Patient?_has:Observation:focus:code=9999-9", 0},
		{"/Patient?_has:Observation:subject:code=9999-9", 0},
	}
	for _, tc := range cases {
		r := f.srv.do("GET", tc.q, nil, "Authorization", patA)
		matches, incl := entryIDs(r, "match"), entryIDs(r, "include")
		t.Logf("%s -> %d, %d matches, %d included", tc.q, r.Status, len(matches), len(incl))
		if r.Status != http.StatusOK {
			t.Errorf("%s: status %d: %s", tc.q, r.Status, r.Body)
		}
		if tc.matches >= 0 && len(matches) != tc.matches {
			t.Errorf("%s: %d matches, want %d (an oracle on hidden data): %s", tc.q, len(matches), tc.matches, r.Body)
		}
		for _, m := range []string{markerB, markerBObs, f.obsB, obaID, "Patient/" + f.patB + `"},"search`} {
			if strings.Contains(string(r.Body), m) && !strings.Contains(tc.q, m) {
				t.Errorf("%s leaks %q: %s", tc.q, m, r.Body)
			}
		}
		for _, id := range incl {
			if id == "Patient/"+f.patB {
				t.Errorf("%s includes Patient B", tc.q)
			}
		}
	}
	// The admin gets B's data through the same queries: the checks above
	// are not vacuous.
	r := f.srv.do("GET", "/Patient?_has:Observation:focus:code=9999-9", nil, "Authorization", f.admin).wantStatus(t, http.StatusOK)
	wantSet(t, "admin _has", entryIDs(r, "match"), "Patient/"+f.patA)
	r = f.srv.do("GET", "/Observation?code=7777-7&_include=Observation:focus", nil, "Authorization", f.admin).wantStatus(t, http.StatusOK)
	wantSet(t, "admin include", entryIDs(r, "include"), "Patient/"+f.patB)
	r = f.srv.do("GET", "/Observation?focus:Patient.name="+markerB, nil, "Authorization", f.admin).wantStatus(t, http.StatusOK)
	if len(entryIDs(r, "match")) != 1 {
		t.Errorf("admin chain: %s", r.Body)
	}
}

// TestSearchLargeChain: a chain that finds more resources than one store
// query takes as terms still answers (the in-memory matcher decides).
func TestSearchLargeChain(t *testing.T) {
	s := mustServer(t)
	var tx []any
	for i := range 600 {
		tx = append(tx, map[string]any{"fullUrl": fmt.Sprintf("urn:uuid:00000000-0000-4000-8000-%012d", i), "resource": patient("Crowd"),
			"request": map[string]any{"method": "POST", "url": "Patient"}})
	}
	for i := range 3 {
		tx = append(tx, map[string]any{"resource": observation(fmt.Sprintf("urn:uuid:00000000-0000-4000-8000-%012d", i*200), "8867-4", "2024-01-01"),
			"request": map[string]any{"method": "POST", "url": "Observation"}})
	}
	s.do("POST", "/", map[string]any{"resourceType": "Bundle", "type": "transaction", "entry": tx}).wantStatus(t, http.StatusOK)
	r := s.do("GET", "/Observation?subject:Patient.name=crowd", nil).wantStatus(t, http.StatusOK)
	if str(r.JSON, "total") != "3" {
		t.Fatalf("chain over 600 patients: total %s, want 3", str(r.JSON, "total"))
	}
	r = s.do("GET", "/Patient?_has:Observation:subject:code=8867-4&name=crowd", nil).wantStatus(t, http.StatusOK)
	if str(r.JSON, "total") != "3" {
		t.Fatalf("_has: total %s, want 3", str(r.JSON, "total"))
	}
}

// TestSummaryText: _summary=text keeps text, id, meta and the top-level
// mandatory elements (an Observation's status, with its _status, and
// code), in a search and a read.
func TestSummaryText(t *testing.T) {
	s := mustServer(t)
	obs := observation("Patient/p1", "8867-4", "2024-01-01")
	obs["text"] = map[string]any{"status": "generated", "div": `<div xmlns="http://www.w3.org/1999/xhtml">Heart rate 72</div>`}
	obs["_status"] = map[string]any{"id": "s1"}
	obs["valueQuantity"] = map[string]any{"value": 72}
	id := str(s.do("POST", "/Observation", obs).wantStatus(t, http.StatusCreated).JSON, "id")
	search := s.do("GET", "/Observation?_id="+id+"&_summary=text", nil).wantStatus(t, http.StatusOK)
	read := s.do("GET", "/Observation/"+id+"?_summary=text", nil).wantStatus(t, http.StatusOK)
	for name, got := range map[string]map[string]any{"search": search.JSON["entry"].([]any)[0].(map[string]any)["resource"].(map[string]any), "read": read.JSON} {
		var keys []string
		for k := range got {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		if want := []string{"_status", "code", "id", "meta", "resourceType", "status", "text"}; !slices.Equal(keys, want) {
			t.Errorf("%s with _summary=text: elements %v, want %v", name, keys, want)
		}
		if !strings.Contains(fmt.Sprint(got["meta"]), "SUBSETTED") {
			t.Errorf("%s with _summary=text: no SUBSETTED tag: %v", name, got["meta"])
		}
	}
}
