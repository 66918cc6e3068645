package web_test

import (
	"net/http"
	"sort"
	"strings"
	"testing"
)

// TestCompartmentSearch: GET Patient/[id]/[type] finds the resources of
// the type in the patient's compartment, by any of the type's compartment
// parameters (an Observation's subject or performer), with the search's
// own parameters, paging and includes; the patient's compartment holds
// the patient itself and the patients linking to it. Other compartments,
// every type at once and unknown types are refused; a patient that does
// not exist has an empty compartment.
func TestCompartmentSearch(t *testing.T) {
	s := mustServer(t)
	pat := str(s.do("POST", "/Patient", patient("Focus")).wantStatus(t, http.StatusCreated).JSON, "id")
	linked := patient("Linked")
	linked["link"] = []any{map[string]any{"other": map[string]any{"reference": "Patient/" + pat}, "type": "seealso"}}
	linkedID := str(s.do("POST", "/Patient", linked).wantStatus(t, http.StatusCreated).JSON, "id")
	other := str(s.do("POST", "/Patient", patient("Elsewhere")).wantStatus(t, http.StatusCreated).JSON, "id")

	bySubject := str(s.do("POST", "/Observation", observation("Patient/"+pat, "8867-4", "2024-01-01")).wantStatus(t, http.StatusCreated).JSON, "id")
	performed := observation("Patient/"+other, "8310-5", "2024-01-02")
	performed["performer"] = []any{map[string]any{"reference": "Patient/" + pat}}
	byPerformer := str(s.do("POST", "/Observation", performed).wantStatus(t, http.StatusCreated).JSON, "id")
	s.do("POST", "/Observation", observation("Patient/"+other, "8867-4", "2024-01-03")).wantStatus(t, http.StatusCreated)

	ids := func(path string) string {
		t.Helper()
		r := s.do("GET", path, nil).wantStatus(t, http.StatusOK)
		entries, _ := r.JSON["entry"].([]any)
		var got []string
		for _, e := range entries {
			en := e.(map[string]any)
			got = append(got, str(en, "resource", "resourceType")+"/"+str(en, "resource", "id")+":"+str(en, "search", "mode"))
		}
		sort.Strings(got)
		return str(r.JSON, "total") + " " + strings.Join(got, ",")
	}
	base := "/Patient/" + pat
	for _, c := range []struct{ path, want string }{
		{base + "/Observation", "2 " + sorted("Observation/"+bySubject+":match", "Observation/"+byPerformer+":match")},
		{base + "/Observation?code=8310-5", "1 Observation/" + byPerformer + ":match"},
		{base + "/Observation?code=8867-4&_include=Observation:subject", "1 Observation/" + bySubject + ":match,Patient/" + pat + ":include"},
		{base + "/Observation?_count=1&_sort=date", "2 Observation/" + bySubject + ":match"},
		{base + "/Patient", "2 " + sorted("Patient/"+linkedID+":match", "Patient/"+pat+":match")},
		{base + "/Subscription", "0 "},
		{"/Patient/no-such-patient/Observation", "0 "},
	} {
		if got := ids(c.path); got != c.want {
			t.Errorf("GET %s: %s, want %s", c.path, got, c.want)
		}
	}
	// the links page within the compartment
	r := s.do("GET", base+"/Observation?_count=1", nil).wantStatus(t, http.StatusOK)
	if next := str(r.JSON, "link", 1, "url"); !strings.Contains(next, base+"/Observation?") || !strings.Contains(next, "_offset=1") {
		t.Errorf("next link %q, want the compartment search's next page", next)
	}
	if r := s.do("POST", base+"/Observation/_search", "code=8310-5", "Content-Type", "application/x-www-form-urlencoded").wantStatus(t, http.StatusOK); str(r.JSON, "total") != "1" {
		t.Errorf("POST _search in the compartment: %s", r.Body)
	}

	s.do("GET", base+"/*", nil).wantOutcome(t, http.StatusBadRequest, "name the type")
	s.do("GET", "/Encounter/x/Observation", nil).wantOutcome(t, http.StatusBadRequest, "Patient compartment only")
	s.do("GET", base+"/Nonsense", nil).wantOutcome(t, http.StatusNotFound, "unknown resource type")
	s.do("GET", base+"/Observation?nonsense=1", nil).wantOutcome(t, http.StatusBadRequest, "nonsense")
	// the routes beside it are what they were
	s.do("GET", base+"/_history", nil).wantStatus(t, http.StatusOK)
	s.do("GET", base+"/_history/1", nil).wantStatus(t, http.StatusOK)
}

// sorted is the strings sorted and joined with commas.
func sorted(ss ...string) string {
	sort.Strings(ss)
	return strings.Join(ss, ",")
}
