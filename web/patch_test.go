package web_test

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
)

func fhirPathOp(parts ...map[string]any) map[string]any {
	ps := make([]any, len(parts))
	for i, p := range parts {
		ps[i] = p
	}
	return map[string]any{"name": "operation", "part": ps}
}

func fpPart(name, key string, v any) map[string]any { return map[string]any{"name": name, key: v} }

func TestPatchJSONPatch(t *testing.T) {
	s := mustServer(t)
	id := str(s.do("POST", "/Patient", patient("Chalmers")).wantStatus(t, http.StatusCreated).JSON, "id")
	doc := `[{"op":"replace","path":"/gender","value":"male"},{"op":"add","path":"/name/0/given/-","value":"Jim"}]`
	r := s.do("PATCH", "/Patient/"+id, doc, "Content-Type", "application/json-patch+json", "If-Match", `W/"1"`).wantStatus(t, http.StatusOK)
	if str(r.JSON, "gender") != "male" || str(r.JSON, "name", 0, "given", 1) != "Jim" || str(r.JSON, "meta", "versionId") != "2" {
		t.Fatalf("patched: %s", r.Body)
	}
	// Stored as an update.
	h := s.do("GET", "/Patient/"+id+"/_history", nil).wantStatus(t, http.StatusOK)
	if str(h.JSON, "entry", 0, "request", "method") != "PUT" {
		t.Errorf("the patch is not recorded as an update: %s", h.Body)
	}
	// Stale If-Match: 412, nothing written.
	s.do("PATCH", "/Patient/"+id, doc, "Content-Type", "application/json-patch+json", "If-Match", `W/"1"`).wantStatus(t, http.StatusPreconditionFailed)
	// A result the schema refuses: 400, nothing written.
	s.do("PATCH", "/Patient/"+id, `[{"op":"replace","path":"/gender","value":42}]`, "Content-Type", "application/json-patch+json").
		wantStatus(t, http.StatusBadRequest)
	// Changing the id: 422. A test op that fails: 422. Malformed: 400.
	s.do("PATCH", "/Patient/"+id, `[{"op":"replace","path":"/id","value":"other"}]`, "Content-Type", "application/json-patch+json").
		wantStatus(t, http.StatusUnprocessableEntity)
	s.do("PATCH", "/Patient/"+id, `[{"op":"test","path":"/gender","value":"female"}]`, "Content-Type", "application/json-patch+json").
		wantStatus(t, http.StatusUnprocessableEntity)
	s.do("PATCH", "/Patient/"+id, `{"op":"x"}`, "Content-Type", "application/json-patch+json").wantStatus(t, http.StatusBadRequest)
	s.do("PATCH", "/Patient/"+id, `x`, "Content-Type", "text/plain").wantStatus(t, http.StatusUnsupportedMediaType)
	s.do("PATCH", "/Patient/nosuch", doc, "Content-Type", "application/json-patch+json").wantStatus(t, http.StatusNotFound)
	if v := str(s.do("GET", "/Patient/"+id, nil).JSON, "meta", "versionId"); v != "2" {
		t.Fatalf("refused patches wrote: version %s, want 2", v)
	}
}

func TestPatchFHIRPath(t *testing.T) {
	s := mustServer(t)
	id := str(s.do("POST", "/Patient", patient("Chalmers")).wantStatus(t, http.StatusCreated).JSON, "id")
	params := map[string]any{"resourceType": "Parameters", "parameter": []any{
		fhirPathOp(fpPart("type", "valueCode", "replace"), fpPart("path", "valueString", "Patient.birthDate"), fpPart("value", "valueDate", "1990-01-01")),
		fhirPathOp(fpPart("type", "valueCode", "add"), fpPart("path", "valueString", "Patient"), fpPart("name", "valueString", "active"), fpPart("value", "valueBoolean", true)),
		fhirPathOp(fpPart("type", "valueCode", "delete"), fpPart("path", "valueString", "Patient.gender")),
	}}
	r := s.do("PATCH", "/Patient/"+id, params).wantStatus(t, http.StatusOK)
	if str(r.JSON, "birthDate") != "1990-01-01" || str(r.JSON, "active") != "true" || str(r.JSON, "gender") != "" {
		t.Fatalf("patched: %s", r.Body)
	}
	bad := map[string]any{"resourceType": "Parameters", "parameter": []any{
		fhirPathOp(fpPart("type", "valueCode", "replace"), fpPart("path", "valueString", "Patient.gender"), fpPart("value", "valueCode", "male")),
	}}
	s.do("PATCH", "/Patient/"+id, bad).wantStatus(t, http.StatusUnprocessableEntity)
	s.do("PATCH", "/Patient/"+id, patient("X")).wantStatus(t, http.StatusBadRequest)
}

func TestPatchInBundles(t *testing.T) {
	s := mustServer(t)
	id := str(s.do("POST", "/Patient", patient("Chalmers")).wantStatus(t, http.StatusCreated).JSON, "id")
	binary := map[string]any{"resourceType": "Binary", "contentType": "application/json-patch+json",
		"data": base64.StdEncoding.EncodeToString([]byte(`[{"op":"replace","path":"/gender","value":"male"}]`))}
	params := map[string]any{"resourceType": "Parameters", "parameter": []any{
		fhirPathOp(fpPart("type", "valueCode", "replace"), fpPart("path", "valueString", "Patient.birthDate"), fpPart("value", "valueDate", "1990-01-01")),
	}}
	entry := func(res map[string]any) map[string]any {
		return map[string]any{"resource": res, "request": map[string]any{"method": "PATCH", "url": "Patient/" + id}}
	}
	r := s.do("POST", "/", map[string]any{"resourceType": "Bundle", "type": "batch", "entry": []any{entry(binary)}}).wantStatus(t, http.StatusOK)
	if str(r.JSON, "entry", 0, "response", "status") != "200 OK" || str(r.JSON, "entry", 0, "resource", "gender") != "male" {
		t.Fatalf("batch JSON Patch: %s", r.Body)
	}
	r = s.do("POST", "/", map[string]any{"resourceType": "Bundle", "type": "transaction", "entry": []any{entry(params)}}).wantStatus(t, http.StatusOK)
	if str(r.JSON, "entry", 0, "response", "status") != "200 OK" || str(r.JSON, "entry", 0, "resource", "birthDate") != "1990-01-01" ||
		str(r.JSON, "entry", 0, "resource", "meta", "versionId") != "3" {
		t.Fatalf("transaction FHIRPath Patch: %s", r.Body)
	}
	// A patch that does not apply fails the transaction.
	badParams := map[string]any{"resourceType": "Parameters", "parameter": []any{
		fhirPathOp(fpPart("type", "valueCode", "delete"), fpPart("path", "valueString", "Patient.name")),
		fhirPathOp(fpPart("type", "valueCode", "frob"), fpPart("path", "valueString", "Patient.name")),
	}}
	s.do("POST", "/", map[string]any{"resourceType": "Bundle", "type": "transaction", "entry": []any{entry(badParams)}}).wantStatus(t, http.StatusUnprocessableEntity)
	s.do("POST", "/", map[string]any{"resourceType": "Bundle", "type": "transaction", "entry": []any{entry(patient("X"))}}).wantStatus(t, http.StatusBadRequest)
	if v := str(s.do("GET", "/Patient/"+id, nil).JSON, "meta", "versionId"); v != "3" {
		t.Fatalf("refused patches wrote: version %s, want 3", v)
	}
	cs := s.do("GET", "/metadata", nil).wantStatus(t, http.StatusOK)
	if got := str(cs.JSON, "rest", 0, "resource", 0, "interaction"); !strings.Contains(got, `"patch"`) {
		t.Errorf("patch not advertised: %s", got)
	}
}

// TestPatchJSONPatchBombs: a JSON Patch whose copies double the document
// (copy /extension/0 into /extension/0/extension/-, again and again) is
// refused with 422 before it asks for gigabytes; negative indices and a
// document that is not an array are refused as RFC 6902 says.
func TestPatchJSONPatchBombs(t *testing.T) {
	s := mustServer(t)
	p := patient("Bomb")
	p["extension"] = []any{map[string]any{"url": "http://example.org/a",
		"extension": []any{map[string]any{"url": "b", "valueString": strings.Repeat("v", 200)}}}}
	id := str(s.do("POST", "/Patient", p).wantStatus(t, http.StatusCreated).JSON, "id")
	ops := strings.TrimSuffix(strings.Repeat(`{"op":"copy","from":"/extension/0","path":"/extension/0/extension/-"},`, 40), ",")
	r := s.do("PATCH", "/Patient/"+id, "["+ops+"]", "Content-Type", "application/json-patch+json").wantStatus(t, http.StatusUnprocessableEntity)
	if !strings.Contains(string(r.Body), "copy") {
		t.Errorf("the refusal does not name the copies: %s", r.Body)
	}
	s.do("PATCH", "/Patient/"+id, `[{"op":"add","path":"/name/-1","value":{"family":"x"}}]`, "Content-Type", "application/json-patch+json").
		wantStatus(t, http.StatusUnprocessableEntity)
	for _, doc := range []string{`null`, `"x"`, `7`} {
		s.do("PATCH", "/Patient/"+id, doc, "Content-Type", "application/json-patch+json").wantStatus(t, http.StatusBadRequest)
	}
	if v := str(s.do("GET", "/Patient/"+id, nil).JSON, "meta", "versionId"); v != "1" {
		t.Fatalf("refused patches wrote: version %s, want 1", v)
	}
}

// TestIfMatchGarbage: an If-Match that names no version is refused with
// 400 on PUT, PATCH, DELETE and in bundles; it used to be read as no
// If-Match, so the write went through unconditionally.
func TestIfMatchGarbage(t *testing.T) {
	s := mustServer(t)
	id := str(s.do("POST", "/Patient", patient("Garbage")).wantStatus(t, http.StatusCreated).JSON, "id")
	body := patient("Changed")
	body["id"] = id
	for _, v := range []string{`"`, `W/`, `W/""`, `*`, `"1", "2"`, `W/"1 OR 1=1"`, strings.Repeat("9", 65)} {
		s.do("PUT", "/Patient/"+id, body, "If-Match", v).wantStatus(t, http.StatusBadRequest)
		s.do("PATCH", "/Patient/"+id, `[]`, "Content-Type", "application/json-patch+json", "If-Match", v).wantStatus(t, http.StatusBadRequest)
		s.do("DELETE", "/Patient/"+id, nil, "If-Match", v).wantStatus(t, http.StatusBadRequest)
	}
	b := map[string]any{"resourceType": "Bundle", "type": "transaction", "entry": []any{map[string]any{"resource": body,
		"request": map[string]any{"method": "PUT", "url": "Patient/" + id, "ifMatch": `"`}}}}
	s.do("POST", "/", b).wantStatus(t, http.StatusBadRequest)
	for _, v := range []string{`W/"1"`, `"1"`, `1`} {
		s.do("GET", "/Patient/"+id, nil, "If-Match", v).wantStatus(t, http.StatusOK)
	}
	if v := str(s.do("GET", "/Patient/"+id, nil).JSON, "meta", "versionId"); v != "1" {
		t.Fatalf("writes with a garbage If-Match went through: version %s, want 1", v)
	}
	s.do("PUT", "/Patient/"+id, body, "If-Match", `W/"1"`).wantStatus(t, http.StatusOK)
}
