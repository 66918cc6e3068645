package web_test

import (
	"net/http"
	"testing"
)

// TestBatchRoutedEntries: a batch's GET entries may ask for anything a GET
// may (vread, histories, the CapabilityStatement, the search of all
// types), and HEAD entries answer without the resource; what is not a
// FHIR interaction is a 400 entry.
func TestBatchRoutedEntries(t *testing.T) {
	s := mustServer(t)
	p := patient("Routed")
	p["id"] = "routed-1"
	s.do("PUT", "/Patient/routed-1", p).wantStatus(t, http.StatusCreated)
	p["active"] = true
	s.do("PUT", "/Patient/routed-1", p).wantStatus(t, http.StatusOK)
	get := func(method, url string) map[string]any {
		return map[string]any{"request": map[string]any{"method": method, "url": url}}
	}
	r := s.do("POST", "/", map[string]any{"resourceType": "Bundle", "type": "batch", "entry": []any{
		get("GET", "Patient/routed-1/_history/1"),
		get("GET", "Patient/routed-1/_history"),
		get("GET", "_history?_count=1"),
		get("GET", "metadata"),
		get("GET", "?_type=Patient&_id=routed-1"),
		get("HEAD", "Patient/routed-1"),
		get("HEAD", "Patient/routed-1/_history/1"),
		get("GET", "Patient/routed-1/_history/9"),
		get("GET", "Patient/routed-1/extra/deep"),
		get("GET", "/"),
	}}).wantStatus(t, http.StatusOK)
	for i, want := range []struct{ status, etag, kind string }{
		{"200 OK", `W/"1"`, "Patient"},
		{"200 OK", "", "Bundle"},
		{"200 OK", "", "Bundle"},
		{"200 OK", "", "CapabilityStatement"},
		{"200 OK", "", "Bundle"},
		{"200 OK", `W/"2"`, ""},
		{"200 OK", `W/"1"`, ""},
		{"404 Not Found", "", ""},
		{"404 Not Found", "", ""},
		{"400 Bad Request", "", ""},
	} {
		if got := str(r.JSON, "entry", i, "response", "status"); got != want.status {
			t.Errorf("entry %d: status %s, want %s", i, got, want.status)
		}
		if got := str(r.JSON, "entry", i, "response", "etag"); got != want.etag {
			t.Errorf("entry %d: etag %s, want %s", i, got, want.etag)
		}
		if got := str(r.JSON, "entry", i, "resource", "resourceType"); got != want.kind {
			t.Errorf("entry %d: resource %q, want %q", i, got, want.kind)
		}
	}
	if got := str(r.JSON, "entry", 1, "resource", "total"); got != "2" {
		t.Errorf("instance history in a batch: total %s", got)
	}
	if got := str(r.JSON, "entry", 4, "resource", "total"); got != "1" {
		t.Errorf("search of all types in a batch: total %s", got)
	}
}
