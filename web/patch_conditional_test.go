package web_test

import (
	"encoding/base64"
	"net/http"
	"testing"
)

// TestConditionalPatch: PATCH Type?search patches the one resource the
// search finds; none is 404, several 412, and nothing is written then. The
// same in batch and transaction entries.
func TestConditionalPatch(t *testing.T) {
	s := mustServer(t)
	withIdentifier := func(family, value string) map[string]any {
		p := patient(family)
		p["identifier"] = []any{map[string]any{"system": "http://example.org/mrn", "value": value}}
		return p
	}
	id := str(s.do("POST", "/Patient", withIdentifier("One", "1")).wantStatus(t, http.StatusCreated).JSON, "id")
	s.do("POST", "/Patient", withIdentifier("Two", "2")).wantStatus(t, http.StatusCreated)
	s.do("POST", "/Patient", withIdentifier("Twin", "2")).wantStatus(t, http.StatusCreated)
	const jp = "application/json-patch+json"
	doc := `[{"op":"add","path":"/active","value":true}]`

	r := s.do("PATCH", "/Patient?identifier=http://example.org/mrn|1", doc, "Content-Type", jp).wantStatus(t, http.StatusOK)
	if str(r.JSON, "id") != id || str(r.JSON, "active") != "true" || str(r.JSON, "meta", "versionId") != "2" {
		t.Fatalf("conditional patch: %s", r.Body)
	}
	params := map[string]any{"resourceType": "Parameters", "parameter": []any{
		fhirPathOp(fpPart("type", "valueCode", "replace"), fpPart("path", "valueString", "Patient.active"), fpPart("value", "valueBoolean", false)),
	}}
	r = s.do("PATCH", "/Patient?identifier=1", params).wantStatus(t, http.StatusOK)
	if str(r.JSON, "active") != "false" || str(r.JSON, "meta", "versionId") != "3" {
		t.Fatalf("conditional FHIRPath Patch: %s", r.Body)
	}
	s.do("PATCH", "/Patient?identifier=9", doc, "Content-Type", jp).wantOutcome(t, http.StatusNotFound, "no resource matches")
	s.do("PATCH", "/Patient?identifier=2", doc, "Content-Type", jp).wantOutcome(t, http.StatusPreconditionFailed, "more than one")
	s.do("PATCH", "/Patient?colour=blue", doc, "Content-Type", jp).wantOutcome(t, http.StatusBadRequest, "colour")
	s.do("PATCH", "/Patient?_count=1", doc, "Content-Type", jp).wantOutcome(t, http.StatusBadRequest, "_count")
	s.do("PATCH", "/Patient", doc, "Content-Type", jp).wantOutcome(t, http.StatusBadRequest, "search")
	s.do("PATCH", "/Patient?identifier=1", doc, "Content-Type", jp, "If-Match", `W/"1"`).wantStatus(t, http.StatusPreconditionFailed)
	if v := str(s.do("GET", "/Patient/"+id, nil).JSON, "meta", "versionId"); v != "3" {
		t.Fatalf("refused conditional patches wrote: version %s, want 3", v)
	}

	// in a batch and a transaction
	binary := map[string]any{"resourceType": "Binary", "contentType": jp,
		"data": base64.StdEncoding.EncodeToString([]byte(`[{"op":"replace","path":"/gender","value":"male"}]`))}
	entry := func(url string) map[string]any {
		return map[string]any{"resource": binary, "request": map[string]any{"method": "PATCH", "url": url}}
	}
	r = s.do("POST", "/", map[string]any{"resourceType": "Bundle", "type": "batch", "entry": []any{
		entry("Patient?identifier=1"), entry("Patient?identifier=2"), entry("Patient?identifier=9"),
	}}).wantStatus(t, http.StatusOK)
	for i, want := range []string{"200 OK", "412 Precondition Failed", "404 Not Found"} {
		if got := str(r.JSON, "entry", i, "response", "status"); got != want {
			t.Errorf("batch entry %d: %s, want %s: %s", i, got, want, r.Body)
		}
	}
	obs := observation("urn:uuid:7f0d7d7e-8b0f-4a55-9d3f-1f2f3f4f5f6f", "8867-4", "2024-01-01")
	named := entry("Patient?identifier=1")
	named["fullUrl"] = "urn:uuid:7f0d7d7e-8b0f-4a55-9d3f-1f2f3f4f5f6f"
	r = s.do("POST", "/", map[string]any{"resourceType": "Bundle", "type": "transaction", "entry": []any{
		named,
		map[string]any{"resource": obs, "request": map[string]any{"method": "POST", "url": "Observation"}},
	}}).wantStatus(t, http.StatusOK)
	if str(r.JSON, "entry", 0, "resource", "id") != id || str(r.JSON, "entry", 1, "resource", "subject", "reference") != "Patient/"+id {
		t.Fatalf("transaction with a conditional patch: %s", r.Body)
	}
	before := str(s.do("GET", "/Patient/"+id, nil).JSON, "meta", "versionId")
	for _, url := range []string{"Patient?identifier=9", "Patient?identifier=2"} {
		s.do("POST", "/", map[string]any{"resourceType": "Bundle", "type": "transaction", "entry": []any{
			map[string]any{"resource": binary, "request": map[string]any{"method": "PATCH", "url": "Patient/" + id}},
			map[string]any{"resource": binary, "request": map[string]any{"method": "PATCH", "url": url}},
		}}).wantStatus(t, map[string]int{"Patient?identifier=9": http.StatusNotFound, "Patient?identifier=2": http.StatusPreconditionFailed}[url])
	}
	if v := str(s.do("GET", "/Patient/"+id, nil).JSON, "meta", "versionId"); v != before {
		t.Fatalf("failed transactions wrote: version %s, want %s", v, before)
	}
}
