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

// TestTransactionLinksBesideReferences: a transaction's fullUrl named by
// an element of a uri type (Attachment.url, a uri list, an extension's
// valueUri, inside a contained resource too) or by an href or src of a
// narrative is replaced by the Type/id it stands for, as FHIR's
// transaction rules ask; a string element that merely holds the same text,
// a uri naming no entry and a nested Bundle keep theirs.
func TestTransactionLinksBesideReferences(t *testing.T) {
	s := mustServer(t)
	const (
		bin   = "urn:uuid:4a1b2c3d-1111-4e5f-8a9b-0c1d2e3f4a5b"
		pat   = "urn:uuid:5b2c3d4e-2222-4f60-9bac-1d2e3f4a5b6c"
		other = "urn:uuid:6c3d4e5f-3333-4071-8cbd-2e3f4a5b6c7d"
	)
	div := `<div xmlns="http://www.w3.org/1999/xhtml"><img src="` + bin + `"/> <a href='` + pat +
		`'>patient</a> <a href="` + other + `">elsewhere</a> ` + bin + `</div>`
	patientRes := map[string]any{"resourceType": "Patient",
		"text":      map[string]any{"status": "generated", "div": div},
		"photo":     []any{map[string]any{"url": bin, "contentType": "text/plain"}},
		"name":      []any{map[string]any{"text": bin}},
		"extension": []any{map[string]any{"url": "http://example.org/fhir/source", "valueUri": bin}},
	}
	order := map[string]any{"resourceType": "ServiceRequest", "status": "active", "intent": "order",
		"subject":         map[string]any{"reference": pat},
		"instantiatesUri": []any{bin, other},
		"contained": []any{map[string]any{"resourceType": "DocumentReference", "id": "doc", "status": "current",
			"content": []any{map[string]any{"attachment": map[string]any{"url": bin}}}}},
		"supportingInfo": []any{map[string]any{"reference": "#doc"}},
	}
	doc := map[string]any{"resourceType": "Bundle", "type": "collection",
		"entry": []any{map[string]any{"fullUrl": bin, "resource": map[string]any{"resourceType": "Basic",
			"code": map[string]any{"text": "inner"}, "implicitRules": bin}}}}
	withURL := func(e map[string]any, u string) map[string]any { e["fullUrl"] = u; return e }
	r := s.do("POST", "/", transaction(
		withURL(postEntry(map[string]any{"resourceType": "Binary", "contentType": "text/plain", "data": "aGk="}), bin),
		withURL(postEntry(patientRes), pat),
		postEntry(order),
		postEntry(doc),
	)).wantStatus(t, http.StatusOK)
	binary := "Binary/" + str(r.JSON, "entry", 0, "resource", "id")
	patientRef := "Patient/" + str(r.JSON, "entry", 1, "resource", "id")

	for _, c := range []struct {
		what      string
		got, want string
	}{
		{"Attachment.url", str(r.JSON, "entry", 1, "resource", "photo", 0, "url"), binary},
		{"an extension's valueUri", str(r.JSON, "entry", 1, "resource", "extension", 0, "valueUri"), binary},
		{"a string element", str(r.JSON, "entry", 1, "resource", "name", 0, "text"), bin},
		{"Extension.url naming no entry", str(r.JSON, "entry", 1, "resource", "extension", 0, "url"), "http://example.org/fhir/source"},
		{"the narrative", str(r.JSON, "entry", 1, "resource", "text", "div"),
			`<div xmlns="http://www.w3.org/1999/xhtml"><img src="` + binary + `"/> <a href="` + patientRef +
				`">patient</a> <a href="` + other + `">elsewhere</a> ` + bin + `</div>`},
		{"a reference", str(r.JSON, "entry", 2, "resource", "subject", "reference"), patientRef},
		{"a uri list's first", str(r.JSON, "entry", 2, "resource", "instantiatesUri", 0), binary},
		{"a uri list's second, naming no entry", str(r.JSON, "entry", 2, "resource", "instantiatesUri", 1), other},
		{"a contained resource's Attachment.url", str(r.JSON, "entry", 2, "resource", "contained", 0, "content", 0, "attachment", "url"), binary},
		{"a nested Bundle's fullUrl", str(r.JSON, "entry", 3, "resource", "entry", 0, "fullUrl"), bin},
		{"a nested Bundle's uri", str(r.JSON, "entry", 3, "resource", "entry", 0, "resource", "implicitRules"), bin},
	} {
		if c.got != c.want {
			t.Errorf("%s: %q, want %q", c.what, c.got, c.want)
		}
	}
	// what was stored is what was answered
	id := str(r.JSON, "entry", 1, "resource", "id")
	if got := str(s.do("GET", "/Patient/"+id, nil).wantStatus(t, http.StatusOK).JSON, "photo", 0, "url"); got != binary {
		t.Errorf("stored Attachment.url %q, want %q", got, binary)
	}
}
