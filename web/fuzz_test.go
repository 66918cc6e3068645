package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/fhirsub/fhirsub/conformance/schema"
	"github.com/fhirsub/fhirsub/fhirstore/sqlite"
	"github.com/fhirsub/fhirsub/web"
)

// fuzzTypes are the URL types a fuzzed body is POSTed to, picked by the
// first fuzz argument; the last is not a resource type.
var fuzzTypes = []string{"Patient", "Observation", "Bundle", "Subscription", "Parameters", "Basic", "NotAType"}

// fuzzTimeout bounds one request: a slower answer is a denial of service.
const fuzzTimeout = 5 * time.Second

// FuzzCreateResource POSTs arbitrary bytes to /{type} on a real server
// over a real SQLite file. The answer must never be a 5xx; every 4xx must
// be a JSON OperationOutcome; and the answer is 201 exactly when the body
// is one JSON object of the URL's type that passes the R4 schema.
func FuzzCreateResource(f *testing.F) {
	valid := []struct {
		typ  uint8
		body string
	}{
		{0, `{"resourceType":"Patient","name":[{"family":"Fuzz","given":["Ada"]}],"gender":"female","birthDate":"1950-02-03"}`},
		{0, `{"resourceType":"Patient"}`},
		{0, `{"resourceType":"Patient","id":"client-chosen","active":true}`},
		{1, `{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"2823-3"}]},"subject":{"reference":"Patient/p1"},"valueQuantity":{"value":6.9,"unit":"mmol/L"}}`},
		{1, `{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueQuantity":{"value":0.000000000000000000000000000001}}`},
		{2, `{"resourceType":"Bundle","type":"collection","entry":[{"resource":{"resourceType":"Patient"}}]}`},
		{5, `{"resourceType":"Basic","code":{"text":"thing"},"extension":[{"url":"http://example.org/e","valueString":"é ✓ 𝄞"}]}`},
		{4, `{"resourceType":"Parameters","parameter":[{"name":"a","valueInteger":2147483647}]}`},
	}
	for _, s := range valid {
		f.Add(s.typ, []byte(s.body))
	}
	deep := strings.Repeat(`{"url":"http://e","extension":[`, 200) + `{"url":"http://e","valueBoolean":true}` + strings.Repeat(`]}`, 200)
	broken := []struct {
		typ  uint8
		body string
	}{
		{0, ``},
		{0, `   `},
		{0, `null`},
		{0, `[]`},
		{0, `"Patient"`},
		{0, `{"resourceType":"Patient","name":[{"family":"Tru`},                    // truncated
		{0, `{"resourceType":"Patient"}{"resourceType":"Patient"}`},                // two documents
		{0, `{"resourceType":"Patient"}]`},                                         // trailing bracket
		{0, `{"resourceType":"Patient"}}`},                                         // trailing brace
		{0, `{"resourceType":"Observation","status":"final","code":{"text":"x"}}`}, // type mismatch
		{0, `{"resourceType":"Patient","active":"yes"}`},                           // wrong type
		{0, `{"resourceType":"Patient","name":{"family":"x"}}`},                    // object for array
		{0, `{"resourceType":"Patient","birthDate":"1950-13-45"}`},                 // bad date
		{0, `{"resourceType":"Patient","gender":"robot"}`},                         // bad code
		{0, `{"resourceType":"Patient","unknownElement":1}`},                       // unknown element
		{0, `{"resourceType":"Patient","name":[{"family":"` + "\xff\xfe" + `"}]}`}, // invalid UTF-8
		{0, `{"resourceType":"Patient","name":[{"family":"\ud800"}]}`},             // lone surrogate escape
		{0, "\xef\xbb\xbf" + `{"resourceType":"Patient"}`},                         // BOM
		{0, `{"resourceType":"Patient","resourceType":"Observation"}`},             // duplicate key
		{0, `{"resourceType":"Patient","extension":[` + deep + `]}`},               // deeply nested
		{0, strings.Repeat(`[`, 10001) + strings.Repeat(`]`, 10001)},               // nested past the decoder's limit
		{0, `{"resourceType":"Patient","id":"` + strings.Repeat("a", 65) + `"}`},   // id too long
		{1, `{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueQuantity":{"value":1e999999999}}`},
		{1, `{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueQuantity":{"value":123456789012345678901234567890123456789}}`},
		{1, `{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueInteger":99999999999}`},
		{1, `{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueQuantity":{"value":-0.0e-999999999}}`},
		{1, `{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueQuantity":{"value":NaN}}`},
		{2, `{"resourceType":"Bundle","type":"collection","entry":[{"resource":{"resourceType":"Patient","active":1}}]}`},
		{3, `{"resourceType":"Subscription","status":"requested","reason":"r","criteria":"Observation?","channel":{"type":"rest-hook"}}`},
		{6, `{"resourceType":"NotAType"}`},
		{0, `{"resourceType":null}`},
		{0, `{"resourceType":42}`},
		{0, `{}`},
		{0, "{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"\x00\"}]}"},
	}
	for _, s := range broken {
		f.Add(s.typ, []byte(s.body))
	}

	db, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(f.TempDir(), "fuzz.db")})
	if err != nil {
		f.Fatalf("open sqlite: %v", err)
	}
	f.Cleanup(func() { _ = db.Close() })
	srv, err := web.New(web.Config{Store: db, BaseURL: "http://fuzz.test"})
	if err != nil {
		f.Fatal(err)
	}

	f.Fuzz(func(t *testing.T, typ uint8, body []byte) {
		rt := fuzzTypes[int(typ)%len(fuzzTypes)]
		req := httptest.NewRequest(http.MethodPost, "/"+rt, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/fhir+json")
		rec := httptest.NewRecorder()
		served := make(chan struct{})
		go func() {
			defer close(served)
			srv.ServeHTTP(rec, req)
		}()
		select {
		case <-served:
		case <-time.After(fuzzTimeout):
			t.Fatalf("POST /%s: no answer within %v for %q", rt, fuzzTimeout, clip(body))
		}

		ok, why := validResource(rt, body)
		switch {
		case rec.Code >= 500:
			t.Fatalf("POST /%s: %d for %q: %s", rt, rec.Code, clip(body), clip(rec.Body.Bytes()))
		case rec.Code == http.StatusCreated:
			if !ok {
				t.Fatalf("POST /%s: 201 for an invalid body (%s): %q", rt, why, clip(body))
			}
			checkCreated(t, rt, rec)
		case rec.Code >= 400:
			checkOutcome(t, rt, rec)
			if ok {
				t.Fatalf("POST /%s: %d for a valid resource %q: %s", rt, rec.Code, clip(body), clip(rec.Body.Bytes()))
			}
		default:
			t.Fatalf("POST /%s: unexpected status %d: %s", rt, rec.Code, clip(rec.Body.Bytes()))
		}
	})
}

// validResource is the test's own oracle: body is exactly one JSON object
// (nothing but white space after it, a byte order mark allowed before it)
// in valid UTF-8, read alike by every parser (no member twice in an
// object, no escaped surrogate without its pair), of type rt, that passes
// the R4 schema. It says why not otherwise.
func validResource(rt string, body []byte) (bool, string) {
	body = bytes.TrimPrefix(body, []byte("\xef\xbb\xbf"))
	if !utf8.Valid(body) {
		return false, "not UTF-8"
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return false, "not JSON: " + err.Error()
	}
	if len(bytes.TrimLeft(body[dec.InputOffset():], " \t\r\n")) > 0 {
		return false, "data after the JSON value"
	}
	obj, isObj := v.(map[string]any)
	if !isObj {
		return false, "not an object"
	}
	dup, replaced := walkTokens(body)
	if dup {
		return false, "a member twice in one object"
	}
	if replaced > sentReplacementChars(body) {
		return false, "an escaped surrogate without its pair (decoded as U+FFFD)"
	}
	if obj["resourceType"] != rt {
		return false, "resourceType is not " + rt
	}
	if err := schema.Validate(obj); err != nil {
		return false, err.Error()
	}
	return true, ""
}

// checkCreated checks a 201: the stored resource of the URL's type with an
// id, a version and a Location.
func checkCreated(t *testing.T, rt string, rec *httptest.ResponseRecorder) {
	t.Helper()
	var res map[string]any
	dec := json.NewDecoder(bytes.NewReader(rec.Body.Bytes()))
	dec.UseNumber()
	if err := dec.Decode(&res); err != nil {
		t.Fatalf("201 body is not JSON: %v: %s", err, clip(rec.Body.Bytes()))
	}
	meta, _ := res["meta"].(map[string]any)
	if res["resourceType"] != rt || res["id"] == nil || meta["versionId"] == nil {
		t.Fatalf("201 body is not a stored %s: %s", rt, clip(rec.Body.Bytes()))
	}
	if loc := rec.Header().Get("Location"); !strings.Contains(loc, "/"+rt+"/") {
		t.Fatalf("201 Location %q", loc)
	}
}

// checkOutcome checks that an error answer is a FHIR JSON OperationOutcome
// with at least one issue that has a severity, a code and a text.
func checkOutcome(t *testing.T, rt string, rec *httptest.ResponseRecorder) {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/fhir+json") {
		t.Fatalf("POST /%s: %d with Content-Type %q", rt, rec.Code, ct)
	}
	var oo map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &oo); err != nil || oo["resourceType"] != "OperationOutcome" {
		t.Fatalf("POST /%s: %d body is not an OperationOutcome (%v): %s", rt, rec.Code, err, clip(rec.Body.Bytes()))
	}
	issues, _ := oo["issue"].([]any)
	if len(issues) == 0 {
		t.Fatalf("POST /%s: %d OperationOutcome without issues: %s", rt, rec.Code, clip(rec.Body.Bytes()))
	}
	for _, is := range issues {
		im, _ := is.(map[string]any)
		if im["severity"] == nil || im["code"] == nil {
			t.Fatalf("POST /%s: %d issue without severity or code: %s", rt, rec.Code, clip(rec.Body.Bytes()))
		}
	}
	if !utf8.Valid(rec.Body.Bytes()) {
		t.Fatalf("POST /%s: %d OperationOutcome is not valid UTF-8", rt, rec.Code)
	}
}

// clip shortens a body for a failure message.
func clip(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "…"
	}
	return string(b)
}

// walkTokens reads body token by token with encoding/json and reports
// whether an object has a member twice, and how many U+FFFD its strings
// hold once decoded (encoding/json turns a lone surrogate escape into one).
func walkTokens(body []byte) (dup bool, replaced int) {
	type level struct {
		keys    map[string]bool // nil for an array
		wantKey bool
	}
	var stack []*level
	afterValue := func() {
		if n := len(stack); n > 0 && stack[n-1].keys != nil {
			stack[n-1].wantKey = true
		}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if err != nil {
			return dup, replaced
		}
		if s, ok := tok.(string); ok {
			replaced += strings.Count(s, "\uFFFD")
		}
		if n := len(stack); n > 0 && stack[n-1].wantKey {
			top := stack[n-1]
			if tok == json.Delim('}') {
				stack = stack[:n-1]
				afterValue()
				continue
			}
			k, _ := tok.(string)
			dup = dup || top.keys[k]
			top.keys[k], top.wantKey = true, false
			continue
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &level{keys: map[string]bool{}, wantKey: true})
		case json.Delim('['):
			stack = append(stack, &level{})
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
			afterValue()
		default:
			afterValue()
		}
	}
}

// sentReplacementChars counts the U+FFFD a JSON text holds as sent: the
// character itself and its escape \ufffd (other escapes skipped whole).
func sentReplacementChars(body []byte) int {
	n := bytes.Count(body, []byte("\uFFFD"))
	for i := 0; i < len(body); i++ {
		if body[i] != '\\' || i+1 >= len(body) {
			continue
		}
		if body[i+1] == 'u' && i+6 <= len(body) && strings.EqualFold(string(body[i+2:i+6]), "fffd") {
			n++
		}
		i++ // the escaped character
	}
	return n
}
