package web_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"sync"
	"testing"

	"github.com/fhirsub/fhirsub/web"
)

func TestConditionalUpdate(t *testing.T) {
	s := mustServer(t)
	const q = "/Patient?identifier=urn:test|u1"
	// No match: creates, under a server id.
	r := s.do("PUT", q, patientWithID("One", "u1")).wantStatus(t, http.StatusCreated)
	id := str(r.JSON, "id")
	if id == "" || str(r.JSON, "meta", "versionId") != "1" {
		t.Fatalf("conditional update as create: %s", r.Body)
	}
	// One match: updates it (the body needs no id).
	p := patientWithID("Two", "u1")
	r = s.do("PUT", q, p).wantStatus(t, http.StatusOK)
	if str(r.JSON, "id") != id || str(r.JSON, "meta", "versionId") != "2" || str(r.JSON, "name", 0, "family") != "Two" {
		t.Fatalf("conditional update of the match: %s", r.Body)
	}
	// If-Match applies to the match.
	s.do("PUT", q, patientWithID("Three", "u1"), "If-Match", `W/"1"`).wantStatus(t, http.StatusPreconditionFailed)
	s.do("PUT", q, patientWithID("Three", "u1"), "If-Match", `W/"2"`).wantStatus(t, http.StatusOK)
	// A body id other than the match's: 400.
	p = patientWithID("Four", "u1")
	p["id"] = "other"
	s.do("PUT", q, p).wantOutcome(t, http.StatusBadRequest, "other")
	// Several matches: 412.
	s.do("POST", "/Patient", patientWithID("Dup", "u2")).wantStatus(t, http.StatusCreated)
	s.do("POST", "/Patient", patientWithID("Dup", "u2")).wantStatus(t, http.StatusCreated)
	s.do("PUT", "/Patient?identifier=urn:test|u2", patientWithID("Dup", "u2")).wantStatus(t, http.StatusPreconditionFailed)
	// No match and a body id: update-as-create under that id.
	p = patientWithID("Five", "u3")
	p["id"] = "given-id"
	r = s.do("PUT", "/Patient?identifier=urn:test|u3", p).wantStatus(t, http.StatusCreated)
	if str(r.JSON, "id") != "given-id" {
		t.Fatalf("conditional update with a body id created %s", r.Body)
	}
	// PUT /Type without a search: 400; bad search: 400.
	s.do("PUT", "/Patient", patientWithID("X", "x")).wantStatus(t, http.StatusBadRequest)
	s.do("PUT", "/Patient?nosuch=1", patientWithID("X", "x")).wantStatus(t, http.StatusBadRequest)
}

// TestConditionalUpdateConcurrent: identical conditional updates of a
// condition nothing answers create one resource.
func TestConditionalUpdateConcurrent(t *testing.T) {
	s := mustServer(t)
	const n = 10
	raw, _ := json.Marshal(patientWithID("Race", "urace"))
	statuses := make([]int, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			req, _ := http.NewRequest("PUT", s.URL+"/Patient?identifier=urn:test|urace", bytes.NewReader(raw))
			req.Header.Set("Content-Type", "application/fhir+json")
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				statuses[i] = resp.StatusCode
				resp.Body.Close()
			}
		}()
	}
	close(start)
	wg.Wait()
	created, updated := 0, 0
	for _, st := range statuses {
		switch st {
		case http.StatusCreated:
			created++
		case http.StatusOK:
			updated++
		}
	}
	total := s.typeTotal(t, "/Patient?identifier=urn:test|urace")
	t.Logf("%d concurrent conditional updates: %d created, %d updated, %s stored", n, created, updated, total)
	if created != 1 || updated != n-1 || total != "1" {
		t.Fatalf("statuses %v: want one 201, %d 200 and one resource", statuses, n-1)
	}
}

func TestConditionalDelete(t *testing.T) {
	s := mustServer(t)
	r := s.do("POST", "/Patient", patientWithID("One", "d1")).wantStatus(t, http.StatusCreated)
	id := str(r.JSON, "id")
	s.do("DELETE", "/Patient?identifier=urn:test|d1", nil).wantStatus(t, http.StatusOK)
	s.do("GET", "/Patient/"+id, nil).wantStatus(t, http.StatusGone)
	// No match: nothing deleted, still 200.
	s.do("DELETE", "/Patient?identifier=urn:test|d1", nil).wantOutcome(t, http.StatusOK, "nothing deleted")
	// Several: 412 by default, nothing deleted.
	s.do("POST", "/Patient", patientWithID("A", "d2")).wantStatus(t, http.StatusCreated)
	s.do("POST", "/Patient", patientWithID("B", "d2")).wantStatus(t, http.StatusCreated)
	s.do("DELETE", "/Patient?identifier=urn:test|d2", nil).wantStatus(t, http.StatusPreconditionFailed)
	if got := s.typeTotal(t, "/Patient?identifier=urn:test|d2"); got != "2" {
		t.Fatalf("%s left after a refused conditional delete, want 2", got)
	}
	s.do("DELETE", "/Patient", nil).wantStatus(t, http.StatusBadRequest)
	cs := s.do("GET", "/metadata", nil).wantStatus(t, http.StatusOK)
	if got := str(cs.JSON, "rest", 0, "resource", 0, "conditionalDelete"); got != "single" {
		t.Errorf("conditionalDelete advertised as %q, want single", got)
	}
	if str(cs.JSON, "rest", 0, "resource", 0, "conditionalCreate") != "true" || str(cs.JSON, "rest", 0, "resource", 0, "conditionalUpdate") != "true" {
		t.Errorf("conditional create/update not advertised")
	}
}

func TestConditionalDeleteMultiple(t *testing.T) {
	s := mustServer(t, func(c *web.Config) { c.ConditionalDeleteMultiple = true })
	for range 3 {
		s.do("POST", "/Patient", patientWithID("A", "m1")).wantStatus(t, http.StatusCreated)
	}
	s.do("POST", "/Patient", patientWithID("B", "m2")).wantStatus(t, http.StatusCreated)
	s.do("DELETE", "/Patient?identifier=urn:test|m1", nil).wantOutcome(t, http.StatusOK, "deleted 3")
	if got := s.typeTotal(t, "/Patient"); got != "1" {
		t.Fatalf("%s Patients left, want 1 (m2)", got)
	}
	cs := s.do("GET", "/metadata", nil).wantStatus(t, http.StatusOK)
	if got := str(cs.JSON, "rest", 0, "resource", 0, "conditionalDelete"); got != "multiple" {
		t.Errorf("conditionalDelete advertised as %q, want multiple", got)
	}
}

func TestConditionalUpdateAndDeleteInBundles(t *testing.T) {
	s := mustServer(t)
	put := func(family, ident, fullURL string) map[string]any {
		return map[string]any{"fullUrl": fullURL, "resource": patientWithID(family, ident),
			"request": map[string]any{"method": "PUT", "url": "Patient?identifier=urn:test|" + ident}}
	}
	del := func(ident string) map[string]any {
		return map[string]any{"request": map[string]any{"method": "DELETE", "url": "Patient?identifier=urn:test|" + ident}}
	}
	// Batch: create by condition, then update by condition.
	batch := map[string]any{"resourceType": "Bundle", "type": "batch", "entry": []any{put("A", "b1", "")}}
	r := s.do("POST", "/", batch).wantStatus(t, http.StatusOK)
	if str(r.JSON, "entry", 0, "response", "status") != "201 Created" {
		t.Fatalf("batch conditional update as create: %s", r.Body)
	}
	id := str(r.JSON, "entry", 0, "resource", "id")
	r = s.do("POST", "/", batch).wantStatus(t, http.StatusOK)
	if str(r.JSON, "entry", 0, "response", "status") != "200 OK" || str(r.JSON, "entry", 0, "resource", "meta", "versionId") != "2" ||
		str(r.JSON, "entry", 0, "resource", "id") != id {
		t.Fatalf("batch conditional update of the match: %s", r.Body)
	}
	// Transaction: update b1 by condition, create t1 by condition, an
	// Observation referencing both fullUrls, delete b2 (no match).
	tx := map[string]any{"resourceType": "Bundle", "type": "transaction", "entry": []any{
		put("B", "b1", "urn:uuid:11111111-1111-1111-1111-111111111111"),
		put("T", "t1", "urn:uuid:22222222-2222-2222-2222-222222222222"),
		map[string]any{"resource": observation("urn:uuid:11111111-1111-1111-1111-111111111111", "8867-4", "2024-01-01"),
			"request": map[string]any{"method": "POST", "url": "Observation"}},
		map[string]any{"resource": observation("urn:uuid:22222222-2222-2222-2222-222222222222", "8867-4", "2024-01-01"),
			"request": map[string]any{"method": "POST", "url": "Observation"}},
		del("nosuch"),
	}}
	r = s.do("POST", "/", tx).wantStatus(t, http.StatusOK)
	if str(r.JSON, "entry", 0, "response", "status") != "200 OK" || str(r.JSON, "entry", 1, "response", "status") != "201 Created" ||
		str(r.JSON, "entry", 4, "response", "status") != "200 OK" {
		t.Fatalf("transaction statuses: %s", r.Body)
	}
	if got := str(r.JSON, "entry", 2, "resource", "subject", "reference"); got != "Patient/"+id {
		t.Fatalf("reference to the updated patient became %q, want Patient/%s", got, id)
	}
	t1 := str(r.JSON, "entry", 1, "resource", "id")
	if got := str(r.JSON, "entry", 3, "resource", "subject", "reference"); t1 == "" || got != "Patient/"+t1 {
		t.Fatalf("reference to the created patient became %q, want Patient/%s", got, t1)
	}
	// Transaction delete by condition; batch delete by condition.
	tx = map[string]any{"resourceType": "Bundle", "type": "transaction", "entry": []any{del("t1")}}
	s.do("POST", "/", tx).wantStatus(t, http.StatusOK)
	s.do("GET", "/Patient/"+t1, nil).wantStatus(t, http.StatusGone)
	batch = map[string]any{"resourceType": "Bundle", "type": "batch", "entry": []any{del("b1")}}
	r = s.do("POST", "/", batch).wantStatus(t, http.StatusOK)
	if str(r.JSON, "entry", 0, "response", "status") != "200 OK" {
		t.Fatalf("batch conditional delete: %s", r.Body)
	}
	s.do("GET", "/Patient/"+id, nil).wantStatus(t, http.StatusGone)
	// Several matches refuse the whole transaction.
	s.do("POST", "/Patient", patientWithID("D", "d")).wantStatus(t, http.StatusCreated)
	s.do("POST", "/Patient", patientWithID("D", "d")).wantStatus(t, http.StatusCreated)
	tx = map[string]any{"resourceType": "Bundle", "type": "transaction", "entry": []any{put("N", "new", ""), del("d")}}
	s.do("POST", "/", tx).wantStatus(t, http.StatusPreconditionFailed)
	if got := s.typeTotal(t, "/Patient?identifier=urn:test|new"); got != "0" {
		t.Fatalf("a refused transaction wrote %s Patients", got)
	}
}
