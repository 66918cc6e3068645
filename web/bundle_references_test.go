package web_test

import (
	"encoding/base64"
	"net/http"
	"testing"
)

func postEntry(res map[string]any, extra ...string) map[string]any {
	req := map[string]any{"method": "POST", "url": res["resourceType"]}
	for i := 0; i+1 < len(extra); i += 2 {
		req[extra[i]] = extra[i+1]
	}
	return map[string]any{"resource": res, "request": req}
}

func transaction(entries ...any) map[string]any {
	return map[string]any{"resourceType": "Bundle", "type": "transaction", "entry": entries}
}

// TestTransactionConditionalReferences: a reference Type?search inside a
// transaction is replaced by the one resource the search finds, stored or
// written by the same transaction; none or several fail the transaction
// with 412 and write nothing. A urn:uuid reference that names no entry
// fails it with 400.
func TestTransactionConditionalReferences(t *testing.T) {
	s := mustServer(t)
	stored := str(s.do("POST", "/Patient", patientWithID("Stored", "one")).wantStatus(t, http.StatusCreated).JSON, "id")
	org := str(s.do("POST", "/Organization", map[string]any{"resourceType": "Organization", "name": "RefOrg"}).wantStatus(t, http.StatusCreated).JSON, "id")
	s.do("POST", "/Patient", withOrganization(patientWithID("Chained", "chained-1"), org)).wantStatus(t, http.StatusCreated)
	for range 2 {
		s.do("POST", "/Patient", patientWithID("Twin", "two")).wantStatus(t, http.StatusCreated)
	}

	// a stored resource
	r := s.do("POST", "/", transaction(postEntry(observation("Patient?identifier=urn:test|one", "8867-4", "2024-01-01")))).wantStatus(t, http.StatusOK)
	if got := str(r.JSON, "entry", 0, "resource", "subject", "reference"); got != "Patient/"+stored {
		t.Errorf("a stored match: subject %q, want Patient/%s", got, stored)
	}

	// a resource the same transaction creates, with the search its
	// conditional create uses; and a second reference to it
	r = s.do("POST", "/", transaction(
		postEntry(patientWithID("New", "three"), "ifNoneExist", "identifier=urn:test|three"),
		postEntry(observation("Patient?identifier=urn:test|three", "8867-4", "2024-01-02")),
		postEntry(observation("Patient?identifier=urn:test|three", "8310-5", "2024-01-02")),
	)).wantStatus(t, http.StatusOK)
	created := str(r.JSON, "entry", 0, "resource", "id")
	for i := 1; i <= 2; i++ {
		if got := str(r.JSON, "entry", i, "resource", "subject", "reference"); created == "" || got != "Patient/"+created {
			t.Errorf("a match created by the transaction: entry %d subject %q, want Patient/%s", i, got, created)
		}
	}

	for _, c := range []struct {
		name   string
		bundle map[string]any
		status int
		says   string
	}{
		{"no match", transaction(postEntry(observation("Patient?identifier=urn:test|none", "1111-1", "2024-01-03"))),
			http.StatusPreconditionFailed, "no resource matches"},
		{"two stored matches", transaction(postEntry(observation("Patient?identifier=urn:test|two", "1111-1", "2024-01-03"))),
			http.StatusPreconditionFailed, "matches 2 resources"},
		{"a stored match and a created one", transaction(
			postEntry(patientWithID("Again", "one")),
			postEntry(observation("Patient?identifier=urn:test|one", "1111-1", "2024-01-03"))),
			http.StatusPreconditionFailed, "matches 2 resources"},
		{"a search that pages", transaction(postEntry(observation("Patient?identifier=urn:test|one&_count=1", "1111-1", "2024-01-03"))),
			http.StatusBadRequest, "_count"},
		{"a chained search, a stored match and a created one", transaction(
			postEntry(withOrganization(patientWithID("Chained", "chained-2"), org)),
			postEntry(observation("Patient?organization.name=RefOrg", "1111-1", "2024-01-03"))),
			http.StatusPreconditionFailed, "matches 2 resources"},
		{"a placeholder that names no entry", transaction(postEntry(observation("urn:uuid:5d2c7c0e-1b9a-4a55-9f6e-2f0d8e7b1c44", "1111-1", "2024-01-03"))),
			http.StatusBadRequest, "names no fullUrl"},
	} {
		s.do("POST", "/", c.bundle).wantOutcome(t, c.status, c.says)
	}
	if r := s.do("GET", "/Observation?code=1111-1", nil).wantStatus(t, http.StatusOK); str(r.JSON, "total") != "0" {
		t.Errorf("a failed transaction wrote an Observation: %s", r.Body)
	}
	if r := s.do("GET", "/Patient?family=Again", nil).wantStatus(t, http.StatusOK); str(r.JSON, "total") != "0" {
		t.Errorf("a failed transaction wrote a Patient: %s", r.Body)
	}
}

// TestTransactionLeavesNestedBundlesAlone: a document Bundle written by a
// transaction keeps its own urn:uuid references, which name its entries,
// not the transaction's.
func TestTransactionLeavesNestedBundlesAlone(t *testing.T) {
	s := mustServer(t)
	const inner = "urn:uuid:0b7e2d7a-55e2-4c3b-8a9e-6f1f3d2c4b10"
	doc := map[string]any{"resourceType": "Bundle", "type": "document", "timestamp": "2024-01-01T00:00:00Z",
		"identifier": map[string]any{"system": "urn:test", "value": "doc-1"},
		"entry": []any{
			map[string]any{"fullUrl": "urn:uuid:3f9d2b1c-7a44-4c55-9e1d-2b6c8a0f5e21", "resource": map[string]any{
				"resourceType": "Composition", "status": "final", "type": map[string]any{"text": "note"},
				"date": "2024-01-01", "title": "t", "author": []any{map[string]any{"reference": inner}},
				"subject": map[string]any{"reference": inner}}},
			map[string]any{"fullUrl": inner, "resource": patient("Inner")},
		}}
	r := s.do("POST", "/", transaction(postEntry(doc))).wantStatus(t, http.StatusOK)
	if got := str(r.JSON, "entry", 0, "resource", "entry", 0, "resource", "subject", "reference"); got != inner {
		t.Fatalf("the document's reference became %q, want %q: %s", got, inner, r.Body)
	}
}

// TestTransactionPlaceholderOfAPatch: the fullUrl of a PATCH entry names
// the patched resource, as that of a PUT entry does.
func TestTransactionPlaceholderOfAPatch(t *testing.T) {
	s := mustServer(t)
	id := str(s.do("POST", "/Patient", patient("Patched")).wantStatus(t, http.StatusCreated).JSON, "id")
	const u = "urn:uuid:9c0d4a51-2e3f-4b6a-8d7c-1e2f3a4b5c6d"
	patch := map[string]any{"resourceType": "Binary", "contentType": "application/json-patch+json",
		"data": base64.StdEncoding.EncodeToString([]byte(`[{"op":"replace","path":"/gender","value":"male"}]`))}
	r := s.do("POST", "/", transaction(
		map[string]any{"fullUrl": u, "resource": patch, "request": map[string]any{"method": "PATCH", "url": "Patient/" + id}},
		postEntry(observation(u, "8867-4", "2024-01-04")),
	)).wantStatus(t, http.StatusOK)
	if got := str(r.JSON, "entry", 1, "resource", "subject", "reference"); got != "Patient/"+id {
		t.Fatalf("a reference to a PATCH entry's fullUrl became %q, want Patient/%s", got, id)
	}
}

func withOrganization(p map[string]any, org string) map[string]any {
	p["managingOrganization"] = map[string]any{"reference": "Organization/" + org}
	return p
}
