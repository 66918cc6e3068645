package web_test

import (
	"bytes"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fhirsub/fhirsub/web"
)

func TestCreateReadUpdateDelete(t *testing.T) {
	s := mustServer(t)
	r := s.do("POST", "/Patient", patient("Chalmers")).wantStatus(t, http.StatusCreated)
	id := str(r.JSON, "id")
	if id == "" || str(r.JSON, "meta", "versionId") != "1" || str(r.JSON, "meta", "lastUpdated") == "" {
		t.Fatalf("created resource lacks id/meta: %s", r.Body)
	}
	if loc := r.Header.Get("Location"); loc != s.URL+"/Patient/"+id+"/_history/1" {
		t.Errorf("Location = %q", loc)
	}
	if et := r.Header.Get("ETag"); et != `W/"1"` {
		t.Errorf("ETag = %q", et)
	}
	if r.Header.Get("Last-Modified") == "" || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/fhir+json") {
		t.Errorf("headers: %v", r.Header)
	}

	got := s.do("GET", "/Patient/"+id, nil).wantStatus(t, http.StatusOK)
	if str(got.JSON, "name", 0, "family") != "Chalmers" {
		t.Fatalf("read: %s", got.Body)
	}

	upd := got.JSON
	upd["gender"] = "other"
	s.do("PUT", "/Patient/"+id, upd, "If-Match", `W/"7"`).wantOutcome(t, http.StatusPreconditionFailed, "conflict")
	r = s.do("PUT", "/Patient/"+id, upd, "If-Match", `W/"1"`).wantStatus(t, http.StatusOK)
	if str(r.JSON, "meta", "versionId") != "2" || str(r.JSON, "gender") != "other" || r.Header.Get("ETag") != `W/"2"` {
		t.Fatalf("update: %s %v", r.Body, r.Header)
	}
	v1 := s.do("GET", "/Patient/"+id+"/_history/1", nil).wantStatus(t, http.StatusOK)
	if str(v1.JSON, "gender") != "female" {
		t.Errorf("vread 1: %s", v1.Body)
	}

	s.do("DELETE", "/Patient/"+id, nil).wantStatus(t, http.StatusOK)
	s.do("GET", "/Patient/"+id, nil).wantOutcome(t, http.StatusGone, "deleted")
	s.do("GET", "/Patient/"+id+"/_history/3", nil).wantOutcome(t, http.StatusGone, "deletion")
	h := s.do("GET", "/Patient/"+id+"/_history", nil).wantStatus(t, http.StatusOK)
	if str(h.JSON, "type") != "history" || str(h.JSON, "total") != "3" ||
		str(h.JSON, "entry", 0, "request", "method") != "DELETE" || str(h.JSON, "entry", 2, "request", "method") != "POST" {
		t.Fatalf("history: %s", h.Body)
	}
	// Update of a deleted resource brings it back as a new version.
	delete(upd, "meta")
	r = s.do("PUT", "/Patient/"+id, upd).wantStatus(t, http.StatusCreated)
	if str(r.JSON, "meta", "versionId") != "4" {
		t.Errorf("resurrected version: %s", r.Body)
	}
	// history tells each version's write as it was answered
	h = s.do("GET", "/Patient/"+id+"/_history", nil).wantStatus(t, http.StatusOK)
	for i, want := range []string{"PUT 201 Created", "DELETE 204 No Content", "PUT 200 OK", "POST 201 Created"} {
		got := str(h.JSON, "entry", i, "request", "method") + " " + str(h.JSON, "entry", i, "response", "status")
		if got != want {
			t.Errorf("history entry %d: %s, want %s", i, got, want)
		}
	}
	// a _since after every version: an empty history of a resource that
	// exists, not a missing resource; an unknown id stays 404 with it
	h = s.do("GET", "/Patient/"+id+"/_history?_since=2999-01-01T00:00:00Z", nil).wantStatus(t, http.StatusOK)
	if str(h.JSON, "type") != "history" || str(h.JSON, "total") != "0" {
		t.Errorf("history with _since in the future: %s", h.Body)
	}
	s.do("GET", "/Patient/no-such-id/_history?_since=2000-01-01T00:00:00Z", nil).wantOutcome(t, http.StatusNotFound, "not found")
	// _count=0 is the total only, as in a search
	for _, path := range []string{"/Patient/" + id + "/_history", "/Patient/_history", "/_history"} {
		h = s.do("GET", path+"?_count=0", nil).wantStatus(t, http.StatusOK)
		if _, has := h.JSON["entry"]; has || str(h.JSON, "total") != "4" {
			t.Errorf("%s?_count=0: %s, want the total (4) without entries", path, h.Body)
		}
	}
}

func TestUpdateAsCreateAndPrefer(t *testing.T) {
	s := mustServer(t)
	p := patient("Lee")
	p["id"] = "pat-1"
	r := s.do("PUT", "/Patient/pat-1", p).wantStatus(t, http.StatusCreated)
	if str(r.JSON, "id") != "pat-1" {
		t.Fatalf("update-as-create: %s", r.Body)
	}
	r = s.do("PUT", "/Patient/pat-1", p, "Prefer", "return=minimal").wantStatus(t, http.StatusOK)
	if len(r.Body) != 0 || r.Header.Get("ETag") != `W/"2"` {
		t.Errorf("return=minimal: body %q etag %q", r.Body, r.Header.Get("ETag"))
	}
	r = s.do("POST", "/Patient", patient("Kim"), "Prefer", "return=OperationOutcome").wantStatus(t, http.StatusCreated)
	if str(r.JSON, "resourceType") != "OperationOutcome" || str(r.JSON, "issue", 0, "severity") != "information" {
		t.Errorf("return=OperationOutcome: %s", r.Body)
	}
}

// TestBadInput walks the bad requests of the REST API: each answers an
// OperationOutcome with the right status and loses nothing.
func TestBadInput(t *testing.T) {
	s := mustServer(t)
	good := s.do("POST", "/Patient", patient("Keep")).wantStatus(t, http.StatusCreated)
	id := str(good.JSON, "id")
	mismatched := patient("X")
	mismatched["id"] = "other"
	noID := patient("Y")
	cases := []struct {
		name, method, path string
		body               any
		headers            []string
		status             int
		fragments          []string
	}{
		{"malformed JSON", "POST", "/Patient", `{"resourceType":"Patient",`, nil, 400, []string{"malformed JSON"}},
		{"trailing garbage", "POST", "/Patient", `{"resourceType":"Patient"} x`, nil, 400, []string{"malformed JSON"}},
		{"array body", "POST", "/Patient", `[1,2]`, nil, 400, []string{"JSON object"}},
		{"empty body", "POST", "/Patient", ``, nil, 400, []string{"empty"}},
		{"invalid UTF-8", "POST", "/Patient", "{\"resourceType\":\"Patient\",\"gender\":\"\xff\"}", nil, 400, []string{"UTF-8"}},
		// JSON that parsers read differently: encoding/json kept the last member, and U+FFFD for the surrogate
		{"member twice", "POST", "/Patient", `{"resourceType":"Patient","gender":"male","gender":"female"}`, nil, 400, []string{"/gender appears twice"}},
		{"member twice in an update", "PUT", "/Patient/" + id, `{"resourceType":"Patient","id":"` + id + `","name":[{"family":"A","family":"B"}]}`, nil, 400, []string{"/name/0/family appears twice"}},
		{"lone surrogate escape", "POST", "/Patient", `{"resourceType":"Patient","name":[{"family":"a\ud800b"}]}`, nil, 400, []string{"surrogate", "/name/0/family"}},
		{"member twice in a JSON Patch", "PATCH", "/Patient/" + id, `[{"op":"replace","path":"/name/0/family","value":"X","value":"Y"}]`,
			[]string{"Content-Type", "application/json-patch+json"}, 400, []string{"/0/value appears twice"}},
		{"member twice in a transaction entry", "POST", "/", `{"resourceType":"Bundle","type":"transaction","entry":[{"request":{"method":"PUT","url":"Patient/` + id +
			`"},"resource":{"resourceType":"Patient","id":"` + id + `","active":true,"active":false}}]}`, nil, 400, []string{"/entry/0/resource/active appears twice"}},
		{"unknown type in URL", "POST", "/Spaceship", patient("Z"), nil, 404, []string{"Spaceship"}},
		{"unknown resourceType in body", "POST", "/Patient", map[string]any{"resourceType": "Spaceship"}, nil, 400, []string{"Spaceship"}},
		{"missing resourceType", "POST", "/Patient", map[string]any{"gender": "male"}, nil, 400, []string{"resourceType"}},
		{"type mismatch", "POST", "/Patient", observation("Patient/1", "1-8", "2024-01-01"), nil, 400, []string{"does not match"}},
		{"id mismatch", "PUT", "/Patient/" + id, mismatched, nil, 400, []string{"does not match"}},
		{"update without id", "PUT", "/Patient/" + id, noID, nil, 400, []string{"Patient.id"}},
		{"invalid id", "GET", "/Patient/bad$id", nil, nil, 400, []string{"invalid resource id"}},
		{"unknown element", "POST", "/Patient", map[string]any{"resourceType": "Patient", "colour": "blue"}, nil, 400, []string{"Patient.colour"}},
		{"bad code", "POST", "/Patient", map[string]any{"resourceType": "Patient", "gender": "robot"}, nil, 400, []string{"Patient.gender"}},
		{"bad date", "POST", "/Patient", map[string]any{"resourceType": "Patient", "birthDate": "1990-13-45"}, nil, 400, []string{"Patient.birthDate"}},
		{"wrong content type", "POST", "/Patient", patient("Q"), []string{"Content-Type", "application/fhir+xml"}, 415, []string{"Content-Type"}},
		{"charset other than UTF-8", "POST", "/Patient", patient("Q"), []string{"Content-Type", "application/fhir+json; charset=iso-8859-1"}, 415, []string{"iso-8859-1"}},
		{"JSON Patch in a charset other than UTF-8", "PATCH", "/Patient/" + id, `[{"op":"add","path":"/active","value":true}]`,
			[]string{"Content-Type", "application/json-patch+json; charset=windows-1252"}, 415, []string{"windows-1252"}},
		{"xml accept", "GET", "/Patient/" + id, nil, []string{"Accept", "application/fhir+xml"}, 406, []string{"Accept"}},
		// the fhirVersion parameter (R4 http.html): another version is 406 to ask for, 415 to send
		{"STU3 accept", "GET", "/Patient/" + id, nil, []string{"Accept", "application/fhir+json; fhirVersion=3.0"}, 406, []string{"fhirVersion 4.0"}},
		{"R5 body", "POST", "/Patient", patient("Q"), []string{"Content-Type", "application/fhir+json; fhirVersion=5.0"}, 415, []string{"fhirVersion", "5.0", "R4"}},
		{"STU3 FHIRPath Patch", "PATCH", "/Patient/" + id, map[string]any{"resourceType": "Parameters"},
			[]string{"Content-Type", "application/fhir+json;fhirVersion=3.0"}, 415, []string{"fhirVersion"}},
		{"xml _format", "GET", "/Patient?_format=xml", nil, nil, 406, []string{"_format"}},
		{"not found", "GET", "/Patient/nobody", nil, nil, 404, []string{"not found"}},
		{"vread unknown version", "GET", "/Patient/" + id + "/_history/9", nil, nil, 404, []string{"not found"}},
		{"unknown search param", "GET", "/Patient?colour=blue", nil, nil, 400, []string{"colour"}},
		{"chain on a token parameter", "GET", "/Observation?code.name=x", nil, nil, 400, []string{"code.name"}},
		{"bad _count", "GET", "/Patient?_count=lots", nil, nil, 400, []string{"_count"}},
		{"wrong method", "PATCH", "/Patient/" + id + "/_history", patient("P"), nil, 405, nil},
		{"patch with a resource body", "PATCH", "/Patient/" + id, patient("P"), nil, 400, []string{"JSON Patch"}},
		{"no route", "GET", "/Patient/" + id + "/extra/deep", nil, nil, 404, nil},
		{"bad history param", "GET", "/Patient/_history?_since=yesterday", nil, nil, 400, []string{"_since"}},
		{"delete if-match conflict", "DELETE", "/Patient/" + id, nil, []string{"If-Match", `W/"5"`}, 412, []string{"conflict"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s.do(tc.method, tc.path, tc.body, tc.headers...).wantOutcome(t, tc.status, tc.fragments...)
		})
	}
	after := s.do("GET", "/Patient/"+id, nil).wantStatus(t, http.StatusOK)
	if str(after.JSON, "meta", "versionId") != "1" || str(after.JSON, "name", 0, "family") != "Keep" {
		t.Fatalf("bad input changed the stored resource: %s", after.Body)
	}
}

// TestBodyEncodings checks what a JSON body may carry besides the
// resource: a byte order mark (RFC 8259 lets a parser ignore it), a
// character outside the BMP as an escaped surrogate pair, and a charset
// parameter naming UTF-8.
func TestBodyEncodings(t *testing.T) {
	s := mustServer(t)
	r := s.do("POST", "/Patient", "\xef\xbb\xbf"+`{"resourceType":"Patient","name":[{"family":"G\uD834\uDD1E"}]}`).wantStatus(t, http.StatusCreated)
	if got := str(r.JSON, "name", 0, "family"); got != "G\U0001D11E" {
		t.Errorf("family %q, want G𝄞", got)
	}
	s.do("POST", "/Patient", patient("Cs"), "Content-Type", "application/fhir+json; charset=UTF-8").wantStatus(t, http.StatusCreated)
	// R4's own fhirVersion, as HAPI's client sends it
	s.do("POST", "/Patient", patient("V4"), "Content-Type", "application/fhir+json; fhirVersion=4.0", "Accept", "application/fhir+json;fhirVersion=4.0").wantStatus(t, http.StatusCreated)
	s.do("GET", "/Patient?name=V4", nil, "Accept", "application/fhir+json; fhirVersion=3.0, application/fhir+json; fhirVersion=4.0.1").wantStatus(t, http.StatusOK)
}

func TestBodyLimit(t *testing.T) {
	s := mustServer(t, func(c *web.Config) { c.MaxBodyBytes = 1024 })
	big := patient(strings.Repeat("x", 4096))
	s.do("POST", "/Patient", big).wantOutcome(t, http.StatusRequestEntityTooLarge, "1024")
	s.do("POST", "/Patient", patient("small")).wantStatus(t, http.StatusCreated)
}

func TestMetadataAndHealth(t *testing.T) {
	s := mustServer(t)
	r := s.do("GET", "/metadata", nil).wantStatus(t, http.StatusOK)
	if str(r.JSON, "resourceType") != "CapabilityStatement" || str(r.JSON, "fhirVersion") != "4.0.1" {
		t.Fatalf("metadata: %.200s", r.Body)
	}
	found := false
	for _, res := range r.JSON["rest"].([]any)[0].(map[string]any)["resource"].([]any) {
		m := res.(map[string]any)
		if m["type"] == "Observation" {
			found = strings.Contains(str(m, "searchParam"), `"code"`)
		}
	}
	if !found {
		t.Error("CapabilityStatement lacks Observation with its search parameters")
	}
	s.do("GET", "/healthz", nil).wantStatus(t, http.StatusOK)
	s.do("GET", "/readyz", nil).wantStatus(t, http.StatusOK)
}

// TestReadSubsets: a read and a vread give the subset _summary or
// _elements asks for, tagged SUBSETTED as a search's entries are.
func TestReadSubsets(t *testing.T) {
	s := mustServer(t)
	p := patient("Subset")
	p["text"] = map[string]any{"status": "generated", "div": `<div xmlns="http://www.w3.org/1999/xhtml">Subset</div>`}
	p["maritalStatus"] = map[string]any{"text": "single"}
	p["multipleBirthInteger"] = 2
	id := str(s.do("POST", "/Patient", p).wantStatus(t, http.StatusCreated).JSON, "id")
	for _, path := range []string{"/Patient/" + id, "/Patient/" + id + "/_history/1"} {
		for _, c := range []struct {
			query      string
			keep, drop []string
		}{
			{"_elements=name", []string{"name", "id", "meta"}, []string{"gender", "birthDate", "text", "maritalStatus", "multipleBirthInteger"}},
			// a choice by its element's name, or by its JSON name
			{"_elements=multipleBirth", []string{"multipleBirthInteger"}, []string{"name", "gender"}},
			{"_elements=multipleBirthInteger,gender", []string{"multipleBirthInteger", "gender"}, []string{"name"}},
			{"_summary=true", []string{"name", "gender", "birthDate"}, []string{"text", "maritalStatus"}},
			{"_summary=data", []string{"name", "maritalStatus"}, []string{"text"}},
			{"_summary=text", []string{"text", "id", "meta"}, []string{"name", "gender", "birthDate", "maritalStatus"}},
		} {
			r := s.do("GET", path+"?"+c.query, nil).wantStatus(t, http.StatusOK)
			for _, k := range c.keep {
				if _, ok := r.JSON[k]; !ok {
					t.Errorf("GET %s?%s: %s missing: %s", path, c.query, k, r.Body)
				}
			}
			for _, k := range c.drop {
				if _, ok := r.JSON[k]; ok {
					t.Errorf("GET %s?%s: %s kept: %s", path, c.query, k, r.Body)
				}
			}
			if !strings.Contains(string(r.Body), "SUBSETTED") {
				t.Errorf("GET %s?%s: no SUBSETTED tag: %s", path, c.query, r.Body)
			}
		}
		r := s.do("GET", path, nil).wantStatus(t, http.StatusOK)
		if _, ok := r.JSON["maritalStatus"]; !ok || strings.Contains(string(r.Body), "SUBSETTED") {
			t.Errorf("GET %s: want the whole resource: %s", path, r.Body)
		}
		s.do("GET", path+"?_summary=count", nil).wantOutcome(t, http.StatusBadRequest, "_summary=count")
		s.do("GET", path+"?_elements=name.family", nil).wantOutcome(t, http.StatusBadRequest, "_elements")
	}
}

// TestConditionalRead: If-None-Match naming the current version (or *)
// and If-Modified-Since not before the last update give 304 with the
// version headers and no body; anything else the resource.
func TestConditionalRead(t *testing.T) {
	s := mustServer(t)
	p := patient("Cached")
	p["id"] = "cached-1"
	s.do("PUT", "/Patient/cached-1", p).wantStatus(t, http.StatusCreated)
	r := s.do("GET", "/Patient/cached-1", nil).wantStatus(t, http.StatusOK)
	etag, modified := r.Header.Get("ETag"), r.Header.Get("Last-Modified")
	later := time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)
	earlier := time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat)
	for _, c := range []struct {
		header, value string
		want          int
	}{
		{"If-None-Match", etag, http.StatusNotModified},
		{"If-None-Match", `W/"7", ` + etag, http.StatusNotModified},
		{"If-None-Match", "*", http.StatusNotModified},
		{"If-None-Match", `W/"7"`, http.StatusOK},
		{"If-Modified-Since", modified, http.StatusNotModified},
		{"If-Modified-Since", later, http.StatusNotModified},
		{"If-Modified-Since", earlier, http.StatusOK},
		{"If-Modified-Since", "not a date", http.StatusOK},
	} {
		r := s.do("GET", "/Patient/cached-1", nil, c.header, c.value)
		if r.Status != c.want {
			t.Errorf("%s: %s: status %d, want %d", c.header, c.value, r.Status, c.want)
			continue
		}
		if c.want == http.StatusNotModified && (len(r.Body) != 0 || r.Header.Get("ETag") != etag) {
			t.Errorf("%s: %s: 304 with body %q, ETag %q", c.header, c.value, r.Body, r.Header.Get("ETag"))
		}
	}
	// a change makes the copy stale
	s.do("PUT", "/Patient/cached-1", p).wantStatus(t, http.StatusOK)
	s.do("GET", "/Patient/cached-1", nil, "If-None-Match", etag).wantStatus(t, http.StatusOK)
	cs := s.do("GET", "/metadata", nil).wantStatus(t, http.StatusOK)
	if got := str(cs.JSON, "rest", 0, "resource", 0, "conditionalRead"); got != "full-support" {
		t.Errorf("conditionalRead advertised as %q", got)
	}
}

// TestHead checks that HEAD answers as GET would, without the body: the
// status, the version headers and the length of what GET would send.
func TestHead(t *testing.T) {
	s := mustServer(t)
	p := patient("Headed")
	p["id"] = "head-1"
	s.do("PUT", "/Patient/head-1", p).wantStatus(t, http.StatusCreated)
	for _, path := range []string{"/Patient/head-1", "/Patient/head-1/_history/1", "/Patient?_id=head-1", "/Patient/missing", "/Nonsense/x", "/metadata"} {
		get := s.do("GET", path, nil)
		head := s.do("HEAD", path, nil)
		if head.Status != get.Status || len(head.Body) != 0 {
			t.Errorf("HEAD %s: status %d with %d bytes; GET answers %d", path, head.Status, len(head.Body), get.Status)
		}
		for _, h := range []string{"ETag", "Last-Modified", "Content-Type", "Location"} {
			if head.Header.Get(h) != get.Header.Get(h) {
				t.Errorf("HEAD %s: %s %q; GET's %q", path, h, head.Header.Get(h), get.Header.Get(h))
			}
		}
		if cl := head.Header.Get("Content-Length"); cl != "" && cl != strconv.Itoa(len(get.Body)) && path != "/Patient?_id=head-1" {
			t.Errorf("HEAD %s: Content-Length %s; GET sends %d bytes", path, cl, len(get.Body))
		}
	}
	// a HEAD is a read: it writes nothing and is no way into a write route
	s.do("HEAD", "/Patient", nil).wantStatus(t, http.StatusOK)
	if got := s.do("GET", "/Patient/head-1/_history", nil); str(got.JSON, "total") != "1" {
		t.Errorf("history after HEADs: total %v", got.JSON["total"])
	}
}

// TestPretty: _pretty=true indents the JSON of any answer, errors
// included, and changes nothing else.
func TestPretty(t *testing.T) {
	s := mustServer(t)
	p := patient("Pretty")
	r := s.do("POST", "/Patient?_pretty=true", p).wantStatus(t, http.StatusCreated)
	if !strings.HasPrefix(string(r.Body), "{\n  \"resourceType\": \"Patient\",\n") || r.Header.Get("Location") == "" || r.Header.Get("ETag") != `W/"1"` {
		t.Fatalf("create with _pretty: %v %s", r.Header, r.Body)
	}
	id := str(r.JSON, "id")
	plain := s.do("GET", "/Patient/"+id, nil).wantStatus(t, http.StatusOK)
	pretty := s.do("GET", "/Patient/"+id+"?_pretty=true", nil).wantStatus(t, http.StatusOK)
	if !reflect.DeepEqual(plain.JSON, pretty.JSON) || bytes.Equal(plain.Body, pretty.Body) || !bytes.Contains(pretty.Body, []byte("\n  ")) {
		t.Errorf("read with _pretty: %s\nwithout: %s", pretty.Body, plain.Body)
	}
	if cl := pretty.Header.Get("Content-Length"); cl != strconv.Itoa(len(pretty.Body)) {
		t.Errorf("Content-Length %s for %d bytes", cl, len(pretty.Body))
	}
	miss := s.do("GET", "/Patient/nobody?_pretty=true", nil)
	miss.wantOutcome(t, http.StatusNotFound, "not found")
	if !bytes.Contains(miss.Body, []byte("\n  \"issue\": [")) {
		t.Errorf("error with _pretty: %s", miss.Body)
	}
	s.do("GET", "/Patient/"+id+"?_pretty=true", nil, "If-None-Match", `W/"1"`).wantStatus(t, http.StatusNotModified)
	if b := s.do("GET", "/Patient/"+id+"?_pretty=false", nil).Body; !bytes.Equal(b, plain.Body) {
		t.Errorf("_pretty=false: %s", b)
	}
}

// TestResourceTypeFirst: every FHIR answer opens with its resourceType,
// as the resources the server stores do, whether built as a struct (a
// Bundle) or as a map (the CapabilityStatement, a Parameters answer).
func TestResourceTypeFirst(t *testing.T) {
	s := mustServer(t)
	id := str(s.do("POST", "/Patient", patient("First")).wantStatus(t, http.StatusCreated).JSON, "id")
	for _, path := range []string{"/metadata", "/Patient/" + id, "/Patient?name=First", "/Patient/" + id + "/_history", "/Patient/missing"} {
		r := s.do("GET", path, nil)
		if !bytes.HasPrefix(r.Body, []byte(`{"resourceType":`)) {
			t.Errorf("GET %s: the answer does not open with its resourceType: %.80s", path, r.Body)
		}
	}
}

// TestHistoryAt: _at keeps the versions current at some moment of its
// period (a version is current from its lastUpdated until the next
// one's), on the history of one resource; type and system history refuse
// it, as they refuse what they do not support.
func TestHistoryAt(t *testing.T) {
	s := mustServer(t)
	var times []string // lastUpdated of versions 1..4, each in its own millisecond
	write := func(method, path string, body any, status int) {
		r := s.do(method, path, body).wantStatus(t, status)
		if lu := str(r.JSON, "meta", "lastUpdated"); lu != "" {
			times = append(times, lu)
		}
		for start := time.Now(); time.Since(start) < 3*time.Millisecond; {
			time.Sleep(time.Millisecond) // the next version gets a later lastUpdated
		}
	}
	write("POST", "/Patient", patient("At"), http.StatusCreated)
	id := str(s.do("GET", "/Patient?name=At", nil).wantStatus(t, http.StatusOK).JSON, "entry", 0, "resource", "id")
	for _, g := range []string{"male", "female"} {
		p := patient("At")
		p["id"], p["gender"] = id, g
		write("PUT", "/Patient/"+id, p, http.StatusOK)
	}
	write("DELETE", "/Patient/"+id, nil, http.StatusOK)
	if len(times) != 3 {
		t.Fatalf("lastUpdated of 3 live versions, got %v", times)
	}
	versions := func(q string) string {
		h := s.do("GET", "/Patient/"+id+"/_history?"+q, nil).wantStatus(t, http.StatusOK)
		var got []string
		entries, _ := h.JSON["entry"].([]any)
		for _, e := range entries {
			en := e.(map[string]any)
			v := strings.Trim(str(en, "response", "etag"), `W/"`)
			got = append(got, v)
		}
		if n := str(h.JSON, "total"); n != strconv.Itoa(len(got)) && !strings.Contains(q, "_count") {
			t.Errorf("_history?%s: total %s for %d entries", q, n, len(got))
		}
		return strings.Join(got, ",")
	}
	year := times[0][:4]
	for _, c := range []struct{ q, want string }{
		{"_at=" + year, "4,3,2,1"},           // every version was current in the year
		{"_at=" + times[1], "2"},             // the millisecond version 2 was written in
		{"_at=" + times[0], "1"},             // version 1's own millisecond
		{"_at=2999", "4"},                    // after the deletion: the deletion
		{"_at=1999-12-31", ""},               // before the resource
		{"_at=" + year + "&_count=2", "4,3"}, // paged after the filter
		{"_at=" + year + "&_since=" + times[1], "4,3,2"},
	} {
		if got := versions(c.q); got != c.want {
			t.Errorf("_history?%s: versions %q, want %q", c.q, got, c.want)
		}
	}
	s.do("GET", "/Patient/"+id+"/_history?_at=yesterday", nil).wantOutcome(t, http.StatusBadRequest, "_at")
	s.do("GET", "/Patient/_history?_at="+year, nil).wantOutcome(t, http.StatusBadRequest, "one resource")
	s.do("GET", "/_history?_at="+year, nil).wantOutcome(t, http.StatusBadRequest, "one resource")
	s.do("GET", "/Patient/missing/_history?_at="+year, nil).wantOutcome(t, http.StatusNotFound, "not found")
}
