package web_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"sync"
	"testing"
)

func patientWithID(family, ident string) map[string]any {
	p := patient(family)
	p["identifier"] = []any{map[string]any{"system": "urn:test", "value": ident}}
	return p
}

// typeTotal is the number of current resources of a type.
func (s *testServer) typeTotal(t *testing.T, query string) string {
	t.Helper()
	return str(s.do("GET", query, nil).wantStatus(t, http.StatusOK).JSON, "total")
}

func TestConditionalCreateHeader(t *testing.T) {
	s := mustServer(t)
	cond := "identifier=urn:test|c1"
	r := s.do("POST", "/Patient", patientWithID("One", "c1"), "If-None-Exist", cond).wantStatus(t, http.StatusCreated)
	id := str(r.JSON, "id")
	r = s.do("POST", "/Patient", patientWithID("Two", "c1"), "If-None-Exist", "Patient?"+cond).wantStatus(t, http.StatusOK)
	if str(r.JSON, "id") != id || str(r.JSON, "name", 0, "family") != "One" || str(r.JSON, "meta", "versionId") != "1" {
		t.Fatalf("second conditional create did not answer the existing resource %s unchanged: %s", id, r.Body)
	}
	if got := s.typeTotal(t, "/Patient/_history"); got != "1" {
		t.Fatalf("type history has %s versions after a matching conditional create, want 1", got)
	}
	// Several matches: 412, nothing written.
	s.do("POST", "/Patient", patientWithID("Three", "dup")).wantStatus(t, http.StatusCreated)
	s.do("POST", "/Patient", patientWithID("Four", "dup")).wantStatus(t, http.StatusCreated)
	s.do("POST", "/Patient", patientWithID("Five", "dup"), "If-None-Exist", "identifier=urn:test|dup").
		wantOutcome(t, http.StatusPreconditionFailed, "more than one")
	if got := s.typeTotal(t, "/Patient?identifier=urn:test|dup"); got != "2" {
		t.Fatalf("%s Patients with identifier dup after a 412, want 2", got)
	}
	// A stale claim (its resource deleted) does not block a new create.
	s.do("DELETE", "/Patient/"+id, nil).wantStatus(t, http.StatusOK)
	r = s.do("POST", "/Patient", patientWithID("Six", "c1"), "If-None-Exist", cond).wantStatus(t, http.StatusCreated)
	if str(r.JSON, "id") == id {
		t.Fatalf("conditional create after the deletion reused %s", id)
	}
	// A resource changed so that it no longer matches frees the condition.
	upd := r.JSON
	upd["identifier"] = []any{map[string]any{"system": "urn:test", "value": "moved"}}
	s.do("PUT", "/Patient/"+str(upd, "id"), upd).wantStatus(t, http.StatusOK)
	s.do("POST", "/Patient", patientWithID("Seven", "c1"), "If-None-Exist", cond).wantStatus(t, http.StatusCreated)
}

func TestConditionalCreateRefusesBadConditions(t *testing.T) {
	s := mustServer(t)
	for _, cond := range []string{"", "_count=1", "nosuchparam=1", "Observation?code=1", "identifier=a&_sort=name"} {
		r := s.do("POST", "/Patient", patientWithID("X", "x"), "If-None-Exist", cond)
		if r.Status != http.StatusBadRequest {
			t.Errorf("If-None-Exist %q: status %d, want 400: %s", cond, r.Status, r.Body)
		}
	}
	if got := s.typeTotal(t, "/Patient"); got != "0" {
		t.Fatalf("%s Patients created by refused conditional creates", got)
	}
}

// TestConditionalCreateConcurrent sends identical conditional creates at
// once: exactly one creates, every other answers that resource.
func TestConditionalCreateConcurrent(t *testing.T) {
	s := mustServer(t)
	const n = 12
	for round := range 3 {
		ident := "race" + string(rune('a'+round))
		raw, _ := json.Marshal(patientWithID("Race", ident))
		statuses := make([]int, n)
		ids := make([]string, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				req, _ := http.NewRequest("POST", s.URL+"/Patient", bytes.NewReader(raw))
				req.Header.Set("Content-Type", "application/fhir+json")
				req.Header.Set("If-None-Exist", "identifier=urn:test|"+ident)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					return
				}
				defer resp.Body.Close()
				var body map[string]any
				_ = json.NewDecoder(resp.Body).Decode(&body)
				statuses[i], ids[i] = resp.StatusCode, str(body, "id")
			}()
		}
		close(start)
		wg.Wait()
		created, answered := 0, 0
		for i := range n {
			switch statuses[i] {
			case http.StatusCreated:
				created++
			case http.StatusOK:
				answered++
			}
		}
		total := s.typeTotal(t, "/Patient?identifier=urn:test|"+ident)
		t.Logf("round %d: %d concurrent conditional creates: %d created, %d answered 200, %s stored", round, n, created, answered, total)
		if created != 1 || answered != n-1 || total != "1" {
			t.Fatalf("round %d: statuses %v, want one 201 and %d 200, one stored", round, statuses, n-1)
		}
		for i := range n {
			if ids[i] != ids[0] {
				t.Fatalf("round %d: answers name different resources: %v", round, ids)
			}
		}
	}
}

func TestConditionalCreateInBundles(t *testing.T) {
	s := mustServer(t)
	entry := func(family, ident, fullURL string) map[string]any {
		return map[string]any{
			"fullUrl":  fullURL,
			"resource": patientWithID(family, ident),
			"request":  map[string]any{"method": "POST", "url": "Patient", "ifNoneExist": "identifier=urn:test|" + ident},
		}
	}
	batch := map[string]any{"resourceType": "Bundle", "type": "batch", "entry": []any{entry("B", "b1", "")}}
	r := s.do("POST", "/", batch).wantStatus(t, http.StatusOK)
	if got := str(r.JSON, "entry", 0, "response", "status"); got != "201 Created" {
		t.Fatalf("first batch: %s", r.Body)
	}
	id := str(r.JSON, "entry", 0, "resource", "id")
	r = s.do("POST", "/", batch).wantStatus(t, http.StatusOK)
	if str(r.JSON, "entry", 0, "response", "status") != "200 OK" || str(r.JSON, "entry", 0, "resource", "id") != id {
		t.Fatalf("repeated batch did not answer %s: %s", id, r.Body)
	}
	// A transaction: the conditional entry finds b1, and the Observation
	// that references its fullUrl points at the existing Patient.
	tx := map[string]any{"resourceType": "Bundle", "type": "transaction", "entry": []any{
		entry("B", "b1", "urn:uuid:11111111-1111-1111-1111-111111111111"),
		entry("C", "c1", "urn:uuid:22222222-2222-2222-2222-222222222222"),
		map[string]any{"resource": observation("urn:uuid:11111111-1111-1111-1111-111111111111", "8867-4", "2024-01-01"),
			"request": map[string]any{"method": "POST", "url": "Observation"}},
		map[string]any{"resource": observation("urn:uuid:22222222-2222-2222-2222-222222222222", "8867-4", "2024-01-01"),
			"request": map[string]any{"method": "POST", "url": "Observation"}},
	}}
	r = s.do("POST", "/", tx).wantStatus(t, http.StatusOK)
	if str(r.JSON, "entry", 0, "response", "status") != "200 OK" || str(r.JSON, "entry", 1, "response", "status") != "201 Created" {
		t.Fatalf("transaction statuses: %s", r.Body)
	}
	if got := str(r.JSON, "entry", 2, "resource", "subject", "reference"); got != "Patient/"+id {
		t.Fatalf("reference to the existing patient's fullUrl became %q, want Patient/%s", got, id)
	}
	newID := str(r.JSON, "entry", 1, "resource", "id")
	if got := str(r.JSON, "entry", 3, "resource", "subject", "reference"); got != "Patient/"+newID {
		t.Fatalf("reference to the created patient's fullUrl became %q, want Patient/%s", got, newID)
	}
	r = s.do("POST", "/", tx).wantStatus(t, http.StatusOK)
	if str(r.JSON, "entry", 1, "response", "status") != "200 OK" || str(r.JSON, "entry", 1, "resource", "id") != newID {
		t.Fatalf("repeated transaction did not find c1: %s", r.Body)
	}
	if got := s.typeTotal(t, "/Patient"); got != "2" {
		t.Fatalf("%s Patients after repeated conditional bundles, want 2", got)
	}
	// A failing transaction releases its claims: the next one creates.
	bad := map[string]any{"resourceType": "Bundle", "type": "transaction", "entry": []any{
		entry("D", "d1", ""),
		map[string]any{"request": map[string]any{"method": "DELETE", "url": "Patient/nosuch"}, "resource": nil},
		map[string]any{"resource": patient("E"), "request": map[string]any{"method": "PUT", "url": "Patient/e1"}, "fullUrl": ""},
	}}
	bad["entry"].([]any)[2].(map[string]any)["resource"].(map[string]any)["id"] = "e1"
	bad["entry"].([]any)[2].(map[string]any)["request"].(map[string]any)["ifMatch"] = `W/"9"`
	if r := s.do("POST", "/", bad); r.Status < 400 {
		t.Fatalf("transaction with a failing If-Match: %d %s", r.Status, r.Body)
	}
	single := map[string]any{"resourceType": "Bundle", "type": "transaction", "entry": []any{entry("D", "d1", "")}}
	r = s.do("POST", "/", single).wantStatus(t, http.StatusOK)
	if str(r.JSON, "entry", 0, "response", "status") != "201 Created" {
		t.Fatalf("create after a failed transaction: %s", r.Body)
	}
}
