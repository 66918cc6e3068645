package main

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"
)

// badInputCases is the catalogue of TestBadInputCatalogue: every hostile
// or broken input with the answer a FHIR client should get.
func badInputCases(env badInputEnv) []badCase {
	pat := "/Patient/" + env.patient
	patientBody := func(id string, extra string) []byte {
		return []byte(`{"resourceType":"Patient","id":"` + id + `"` + extra + `}`)
	}
	deep := strings.Repeat("[", 10000) + strings.Repeat("]", 10000)
	txTag := "urn:fhirsub:badinput|tx-atomic"
	wsToken := func(t *testing.T) string {
		t.Helper()
		p := mustFHIR(t, http.StatusOK, "POST", env.base+"/Subscription/"+env.topicSub+"/$get-ws-binding-token", nil)
		for _, raw := range asSlice(p["parameter"]) {
			pm, _ := raw.(map[string]any)
			if pm["name"] == "token" {
				tok, _ := pm["valueString"].(string)
				return tok
			}
		}
		t.Fatalf("$get-ws-binding-token answered no token: %v", p)
		return ""
	}
	claims := jwt.MapClaims{
		"iss": "fhirsub", "aud": "fhirsub-ws-binding", "token_use": "ws-binding", "sub": "anonymous",
		"subscriptions": []string{env.topicSub}, "exp": time.Now().Add(time.Hour).Unix(),
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	forged, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(key)
	b64 := base64.RawURLEncoding.EncodeToString
	algNone := b64([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + b64(mustJSON(claims)) + "."

	cases := []badCase{
		// ---- REST: broken bodies
		{name: "truncated JSON", method: "POST", path: "/Patient",
			body: []byte(`{"resourceType":"Patient","name":[{"fam`), status: 400, issue: "invalid", diag: "malformed JSON"},
		{name: "10k-deep nested JSON array", method: "POST", path: "/Patient",
			body: []byte(deep), status: 400, issue: "invalid", diag: "malformed JSON"},
		{name: "10k-deep nested JSON inside a resource", method: "POST", path: "/Patient",
			body: []byte(`{"resourceType":"Patient","extension":` + deep + `}`), status: 400, issue: "invalid", diag: "depth"},
		{name: "body over --max-body", method: "POST", path: "/Patient",
			body:   []byte(`{"resourceType":"Patient","name":[{"family":"` + strings.Repeat("x", badInputMaxBody) + `"}]}`),
			status: 413, issue: "too-costly", diag: strconv.Itoa(badInputMaxBody)},
		{name: "body over --max-body on a transaction", method: "POST", path: "/",
			body:   []byte(`{"resourceType":"Bundle","type":"transaction","entry":[` + strings.Repeat(`{"request":{"method":"GET","url":"Patient"}},`, 2000) + `{}]}`),
			status: 413, issue: "too-costly"},
		{name: "invalid UTF-8 in the body", method: "POST", path: "/Patient",
			body: []byte("{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"\xff\xfe\xc3\"}]}"), status: 400, issue: "invalid", diag: "UTF-8"},
		{name: "a member twice in one object", method: "POST", path: "/Patient",
			body: []byte(`{"resourceType":"Patient","gender":"male","gender":"female"}`), status: 400, issue: "invalid", diag: "/gender appears twice"},
		{name: "a member twice in a transaction's resource", method: "POST", path: "/",
			body:   []byte(`{"resourceType":"Bundle","type":"transaction","entry":[{"request":{"method":"POST","url":"Patient"},"resource":{"resourceType":"Patient","active":true,"active":false}}]}`),
			status: 400, issue: "invalid", diag: "/entry/0/resource/active appears twice"},
		{name: "an escaped surrogate without its pair", method: "POST", path: "/Patient",
			body: []byte(`{"resourceType":"Patient","name":[{"family":"a\udc00b"}]}`), status: 400, issue: "invalid", diag: "surrogate"},
		{name: "a search of all types naming an unknown type", method: "GET", path: "/?_type=Spaceship", status: 400, issue: "invalid", diag: "Spaceship"},
		{name: "a search of all types with a parameter some types lack", method: "GET", path: "/?name=x", status: 400, issue: "invalid", diag: "name the types with _type"},
		{name: "a conditional patch that finds nothing", method: "PATCH", path: "/Patient?identifier=http://nowhere.example|none",
			ctype: "application/json-patch+json", body: []byte(`[{"op":"add","path":"/active","value":true}]`), status: 404, issue: "not-found", diag: "nothing to patch"},
		{name: "empty body", method: "POST", path: "/Patient", body: []byte{}, ctype: "application/fhir+json",
			status: 400, issue: "invalid", diag: "empty"},
		{name: "a day the calendar does not have", method: "POST", path: "/Patient", body: []byte(`{"resourceType":"Patient","birthDate":"2021-02-29"}`),
			status: 400, issue: "structure", diag: "2021-02 has 28 days"},
		{name: "a choice element under two types", method: "POST", path: "/Patient",
			body:   []byte(`{"resourceType":"Patient","extension":[{"url":"http://example.org/e","valueString":"v","valueInteger":1}]}`),
			status: 400, issue: "structure", diag: "a choice element takes one type"},
		{name: "an integer past 32 bits", method: "POST", path: "/Patient", body: []byte(`{"resourceType":"Patient","multipleBirthInteger":2147483648}`),
			status: 400, issue: "structure", diag: "must be at most 2147483647"},
		{name: "an integer written with a fraction", method: "POST", path: "/Patient", body: []byte(`{"resourceType":"Patient","multipleBirthInteger":2.0}`),
			status: 400, issue: "structure", diag: "not an integer as FHIR writes one"},
		{name: "base64Binary that is not base64", method: "POST", path: "/Binary", body: []byte(`{"resourceType":"Binary","contentType":"text/plain","data":"not base64!!"}`),
			status: 400, issue: "structure", diag: "base64Binary pattern"},
		{name: "a local reference to no contained resource", method: "POST", path: "/Observation",
			body:   []byte(`{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"#nobody"}}`),
			status: 400, issue: "structure", diag: "(ref-1)"},
		{name: "a narrative with a script", method: "POST", path: "/Patient",
			body:   []byte(`{"resourceType":"Patient","text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\"><img src=\"x\" alt=\"\" onerror=\"alert(1)\"/>Ann</div>"}}`),
			status: 400, issue: "structure", diag: "event attribute onerror"},
		{name: "an empty object as an element", method: "POST", path: "/Patient", body: []byte(`{"resourceType":"Patient","name":[{}]}`),
			status: 400, issue: "structure", diag: "object must not be empty"},
		{name: "an extension with neither a value nor extensions", method: "POST", path: "/Patient",
			body:   []byte(`{"resourceType":"Patient","extension":[{"url":"http://example.org/e"}]}`),
			status: 400, issue: "structure", diag: "(ext-1)"},
		{name: "JSON null body", method: "POST", path: "/Patient", body: []byte(`null`), status: 400, issue: "invalid"},
		{name: "trailing garbage after the resource", method: "POST", path: "/Patient",
			body: []byte(`{"resourceType":"Patient"} {"resourceType":"Patient"}`), status: 400, issue: "invalid"},
		{name: "a closing bracket after the resource", method: "POST", path: "/Patient",
			body: []byte(`{"resourceType":"Patient"}]`), status: 400, issue: "invalid", diag: "unexpected data after the resource"},
		{name: "a closing brace and text after the resource", method: "PUT", path: "/Patient/bad-trailer",
			body: []byte(`{"resourceType":"Patient","id":"bad-trailer"} }x`), status: 400, issue: "invalid", diag: "unexpected data after the resource"},
		{name: "wrong Content-Type text/plain", method: "POST", path: "/Patient", ctype: "text/plain",
			body: []byte(`{"resourceType":"Patient"}`), status: 415, issue: "not-supported", diag: "Content-Type"},
		{name: "XML Content-Type", method: "POST", path: "/Patient", ctype: "application/fhir+xml",
			body: []byte(`<Patient xmlns="http://hl7.org/fhir"/>`), status: 415, issue: "not-supported"},
		{name: "malformed Content-Type", method: "POST", path: "/Patient", ctype: "application/;;==",
			body: []byte(`{"resourceType":"Patient"}`), status: 415, issue: "not-supported"},
		{name: "a Bundle whose entry is not a list", method: "POST", path: "/",
			body: []byte(`{"resourceType":"Bundle","type":"batch","entry":{"request":{"method":"GET","url":"metadata"}}}`), status: 400, issue: "structure", diag: "list of entries"},
		{name: "a transaction entry with a misspelt ifNoneExist", method: "POST", path: "/",
			body:   []byte(`{"resourceType":"Bundle","type":"transaction","entry":[{"resource":{"resourceType":"Patient","identifier":[{"system":"urn:fhirsub:badinput","value":"misspelt"}]},"request":{"method":"POST","url":"Patient","ifNoneExists":"identifier=urn:fhirsub:badinput|misspelt"}}]}`),
			status: 400, issue: "structure", diag: "Bundle.entry[0].request.ifNoneExists"},
		{name: "a body labelled gzip that is not", method: "POST", path: "/Patient", header: map[string]string{"Content-Encoding": "gzip"},
			body: []byte(`{"resourceType":"Patient"}`), status: 400, issue: "invalid", diag: "gzip"},
		{name: "a body in a content coding the server does not read", method: "POST", path: "/Patient", header: map[string]string{"Content-Encoding": "br"},
			body: []byte(`{"resourceType":"Patient"}`), status: 415, issue: "not-supported", diag: "Content-Encoding"},
		{name: "a gzip body under --max-body that inflates past it", method: "POST", path: "/Patient", header: map[string]string{"Content-Encoding": "gzip"},
			body:   gzipped([]byte(`{"resourceType":"Patient","name":[{"family":"` + strings.Repeat("x", 50*badInputMaxBody) + `"}]}`)),
			status: 413, issue: "too-costly", diag: strconv.Itoa(badInputMaxBody)},

		// ---- REST: wrong resources and ids
		{name: "unknown resource type", method: "POST", path: "/Foo",
			body: []byte(`{"resourceType":"Foo"}`), status: 404, issue: "not-supported", diag: "Foo"},
		{name: "unknown resource type on read", method: "GET", path: "/Foo/1", status: 404, issue: "not-supported"},
		{name: "resourceType does not match the URL", method: "POST", path: "/Patient",
			body: []byte(`{"resourceType":"Observation","status":"final","code":{"text":"x"}}`), status: 400, issue: "invalid", diag: "does not match"},
		{name: "id in the body does not match the URL", method: "PUT", path: pat,
			body: patientBody("someone-else", ""), status: 400, issue: "invalid", diag: "does not match"},
		{name: "update without an id in the body", method: "PUT", path: pat,
			body: []byte(`{"resourceType":"Patient"}`), status: 400},
		{name: "invalid id characters", method: "PUT", path: "/Patient/bad$id",
			body: patientBody("bad$id", ""), status: 400, issue: "invalid", diag: "invalid resource id"},
		{name: "id longer than 64 characters", method: "GET", path: "/Patient/" + strings.Repeat("a", 65),
			status: 400, issue: "invalid", diag: "invalid resource id"},
		{name: "invalid element value on the seeded Patient", method: "PUT", path: pat,
			body: patientBody(env.patient, `,"gender":"banana"`), status: 400, issue: "structure", diag: "gender"},
		{name: "unknown element on the seeded Patient", method: "PUT", path: pat,
			body: patientBody(env.patient, `,"favouriteColour":"blue"`), status: 400, issue: "structure", diag: "unknown element"},
		{name: "read of a missing resource", method: "GET", path: "/Patient/does-not-exist", status: 404, issue: "not-found"},

		// ---- REST: wrong methods and preconditions
		{name: "DELETE on the type without a search", method: "DELETE", path: "/Patient", status: 400, issue: "invalid", diag: "search"},
		{name: "JSON Patch that does not apply to the seeded Patient", method: "PATCH", path: pat, ctype: "application/json-patch+json",
			body: []byte(`[{"op":"remove","path":"/nosuch"}]`), status: 422, issue: "processing", diag: "JSON Patch"},
		{name: "PATCH with a resource instead of a patch", method: "PATCH", path: pat, body: patientBody(env.patient, ""),
			status: 400, issue: "invalid", diag: "JSON Patch"},
		{name: "PATCH with an unknown content type", method: "PATCH", path: pat, ctype: "text/plain", body: []byte(`x`),
			status: 415, issue: "not-supported"},
		{name: "PUT on the type without a search", method: "PUT", path: "/Patient", body: []byte(`{"resourceType":"Patient"}`), status: 400, issue: "invalid", diag: "search"},
		{name: "conditional create with an empty condition", method: "POST", path: "/Patient", header: map[string]string{"If-None-Exist": ""},
			body: []byte(`{"resourceType":"Patient"}`), status: 400, issue: "invalid", diag: "condition"},
		{name: "POST with X-HTTP-Method-Override DELETE", method: "POST", path: pat,
			header: map[string]string{"X-HTTP-Method-Override": "DELETE"}, body: patientBody(env.patient, ""), status: 405},
		{name: "POST to /metadata", method: "POST", path: "/metadata", body: []byte(`{"resourceType":"CapabilityStatement"}`),
			status: 405, issue: "not-supported"},
		{name: "If-Match with a wrong version", method: "PUT", path: pat, header: map[string]string{"If-Match": `W/"99"`},
			body: patientBody(env.patient, `,"active":false`), status: 412, issue: "conflict"},
		{name: "delete with a wrong If-Match", method: "DELETE", path: pat, header: map[string]string{"If-Match": `W/"7"`},
			status: 412, issue: "conflict"},

		// ---- REST: search
		{name: "unknown search parameter", method: "GET", path: "/Patient?foo=bar", status: 400, issue: "invalid", diag: "unknown search parameter"},
		{name: "chain on a token parameter", method: "GET", path: "/Observation?code.name=Catalogue", status: 400, issue: "invalid", diag: "chain"},
		{name: "bad date prefix", method: "GET", path: "/Observation?date=xx2024", status: 400, issue: "invalid", diag: "prefix"},
		{name: "impossible date", method: "GET", path: "/Observation?date=2024-13-45", status: 400, issue: "invalid"},
		{name: "_count=-1", method: "GET", path: "/Patient?_count=-1", status: 400, issue: "invalid", diag: "_count"},
		{name: "_count beyond int64", method: "GET", path: "/Patient?_count=100000000000000000000", status: 400, issue: "invalid"},
		{name: "unknown modifier", method: "GET", path: "/Patient?name:foo=x", status: 400, issue: "invalid", diag: "modifier"},
		{name: "invalid percent-encoding in the query", method: "GET", path: "/Patient?name=%zz", status: 400, issue: "invalid"},
		{name: "_sort by an unknown parameter", method: "GET", path: "/Patient?_sort=foo", status: 400, issue: "invalid"},
		{name: "POST _search with a JSON body", method: "POST", path: "/Patient/_search", body: []byte(`{"name":"x"}`),
			status: 415, issue: "not-supported", diag: "x-www-form-urlencoded"},

		// ---- REST: transaction
		{name: "transaction Bundle with a bad entry is atomic", method: "POST", path: "/",
			body: mustJSON(map[string]any{"resourceType": "Bundle", "type": "transaction", "entry": []any{
				map[string]any{"fullUrl": "urn:uuid:8c3e0b5a-8f5e-4d5b-9d3c-1b2a3c4d5e6f",
					"resource": map[string]any{"resourceType": "Patient",
						"identifier": []any{map[string]any{"system": "urn:fhirsub:badinput", "value": "tx-atomic"}}},
					"request": map[string]any{"method": "POST", "url": "Patient"}},
				map[string]any{"resource": map[string]any{"resourceType": "Observation", "status": "bogus-status", "code": map[string]any{"text": "x"},
					"identifier": []any{map[string]any{"system": "urn:fhirsub:badinput", "value": "tx-atomic"}},
					"subject":    map[string]any{"reference": "urn:uuid:8c3e0b5a-8f5e-4d5b-9d3c-1b2a3c4d5e6f"}},
					"request": map[string]any{"method": "POST", "url": "Observation"}},
			}}),
			status: 400, diag: "status",
			after: func(t *testing.T) {
				for _, typ := range []string{"Patient", "Observation"} {
					if n := searchTotal(t, env.base+"/"+typ+"?identifier="+txTag); n != "0" {
						t.Errorf("the failed transaction stored %s %s(s)", n, typ)
					}
				}
			}},
		{name: "transaction entry with an unknown method", method: "POST", path: "/",
			body:   []byte(`{"resourceType":"Bundle","type":"transaction","entry":[{"resource":{"resourceType":"Patient","identifier":[{"system":"urn:fhirsub:badinput","value":"tx-atomic"}]},"request":{"method":"POST","url":"Patient"}},{"request":{"method":"FOO","url":"Patient"}}]}`),
			status: 400, issue: "structure", diag: "Bundle.entry[1].request.method",
			after: func(t *testing.T) {
				if n := searchTotal(t, env.base+"/Patient?identifier="+txTag); n != "0" {
					t.Errorf("the failed transaction stored %s Patient(s)", n)
				}
			}},
		{name: "transaction with one fullUrl for two entries", method: "POST", path: "/",
			body: []byte(`{"resourceType":"Bundle","type":"transaction","entry":[` +
				`{"fullUrl":"urn:uuid:2b1f6f0e-7d0c-4a57-a1e2-4d1e0c9b8a01","resource":{"resourceType":"Patient","identifier":[{"system":"urn:fhirsub:badinput","value":"tx-atomic"}]},"request":{"method":"POST","url":"Patient"}},` +
				`{"fullUrl":"urn:uuid:2b1f6f0e-7d0c-4a57-a1e2-4d1e0c9b8a01","resource":{"resourceType":"Patient","identifier":[{"system":"urn:fhirsub:badinput","value":"tx-atomic"}]},"request":{"method":"POST","url":"Patient"}}]}`),
			status: 400, issue: "invalid", diag: "bdl-7",
			after: func(t *testing.T) {
				if n := searchTotal(t, env.base+"/Patient?identifier="+txTag); n != "0" {
					t.Errorf("the refused transaction stored %s Patient(s)", n)
				}
			}},
		{name: "Bundle of type searchset posted to the base", method: "POST", path: "/",
			body: []byte(`{"resourceType":"Bundle","type":"searchset"}`), status: 400, issue: "invalid"},

		// ---- operations
		{name: "$events on an unknown subscription", method: "GET", path: "/Subscription/does-not-exist/$events", status: 404, issue: "not-found"},
		{name: "$events with a negative eventsSinceNumber", method: "GET", path: "/Subscription/" + env.topicSub + "/$events?eventsSinceNumber=-3",
			status: 400, issue: "invalid", diag: "eventsSinceNumber"},
		{name: "$events with a non-numeric eventsSinceNumber", method: "GET", path: "/Subscription/" + env.topicSub + "/$events?eventsSinceNumber=abc",
			status: 400, issue: "invalid"},
		{name: "$events with an unknown content level", method: "GET", path: "/Subscription/" + env.topicSub + "/$events?content=everything",
			status: 400, issue: "invalid", diag: "content"},
		{name: "$events with a truncated Parameters body", method: "POST", path: "/Subscription/" + env.topicSub + "/$events",
			body: []byte(`{"resourceType":"Parameters","parameter":[{"name":"eventsSinceNumber","valueString":`), status: 400, issue: "invalid"},
		{name: "$status on an unknown subscription", method: "GET", path: "/Subscription/does-not-exist/$status", status: 404, issue: "not-found"},
		{name: "$status with an unknown status code", method: "GET", path: "/Subscription/$status?status=bogus", status: 400, issue: "invalid", diag: "bogus"},
		{name: "$status with an invalid id", method: "GET", path: "/Subscription/$status?id=bad$id", status: 400, issue: "invalid"},
		{name: "$status with a body that is not Parameters", method: "POST", path: "/Subscription/$status",
			body: []byte(`{"resourceType":"Patient"}`), status: 400, issue: "invalid", diag: "Parameters"},
		{name: "$status with a malformed form body", method: "POST", path: "/Subscription/$status", ctype: "application/x-www-form-urlencoded",
			body: []byte(`status=%zz`), status: 400, issue: "invalid"},
		{name: "$status with a wrong method", method: "DELETE", path: "/Subscription/" + env.topicSub + "/$status", status: 405, issue: "not-supported"},
		{name: "$get-ws-binding-token on an unknown subscription", method: "POST", path: "/Subscription/does-not-exist/$get-ws-binding-token",
			status: 404, issue: "not-found"},

		// ---- Subscription validation (the SSRF guard is not allow-listed)
		{name: "rest-hook endpoint at 127.0.0.1", method: "POST", path: "/Subscription",
			body: restHook("http://127.0.0.1:9/hook"), status: 422, issue: "invalid", diag: "not allowed"},
		{name: "rest-hook endpoint at [::1]", method: "POST", path: "/Subscription",
			body: restHook("http://[::1]:9/hook"), status: 422, issue: "invalid", diag: "not allowed"},
		{name: "rest-hook endpoint at localhost", method: "POST", path: "/Subscription",
			body: restHook("http://localhost:9/hook"), status: 422, issue: "invalid", diag: "not allowed"},
		{name: "rest-hook endpoint at 169.254.169.254 (cloud metadata)", method: "POST", path: "/Subscription",
			body: restHook("http://169.254.169.254/latest/meta-data/"), status: 422, issue: "invalid", diag: "not allowed"},
		{name: "rest-hook endpoint at 10.0.0.1", method: "POST", path: "/Subscription",
			body: restHook("https://10.0.0.1/hook"), status: 422, issue: "invalid", diag: "not allowed"},
		{name: "rest-hook endpoint file:///etc/passwd", method: "POST", path: "/Subscription",
			body: restHook("file:///etc/passwd"), status: 422, issue: "invalid", diag: "scheme"},
		{name: "rest-hook endpoint ftp://", method: "POST", path: "/Subscription",
			body: restHook("ftp://example.org/hook"), status: 422, issue: "invalid", diag: "scheme"},
		{name: "rest-hook endpoint with user info", method: "POST", path: "/Subscription",
			body: restHook("https://user:secret@example.org/hook"), status: 422, issue: "invalid"},
		{name: "channel.header with CRLF header injection", method: "POST", path: "/Subscription",
			body: subscriptionBody(map[string]any{"type": "rest-hook", "endpoint": "https://example.org/hook",
				"header": []any{"X-Tenant: a\r\nHost: evil.example"}}, nil),
			status: 422, issue: "invalid", diag: "line break"},
		{name: "channel.header with a bare LF", method: "POST", path: "/Subscription",
			body: subscriptionBody(map[string]any{"type": "rest-hook", "endpoint": "https://example.org/hook",
				"header": []any{"Authorization: Bearer x\nX-Injected: 1"}}, nil),
			status: 422, issue: "invalid"},
		// not an R4 channel type at all: a structure error
		{name: "unknown channel type", method: "POST", path: "/Subscription",
			body:   subscriptionBody(map[string]any{"type": "carrier-pigeon", "endpoint": "https://example.org/hook"}, nil),
			status: 400, issue: "structure", diag: "channel.type"},
		// an R4 channel type this server does not implement
		{name: "email channel", method: "POST", path: "/Subscription",
			body:   subscriptionBody(map[string]any{"type": "email", "endpoint": "mailto:someone@example.org"}, nil),
			status: 422, issue: "not-supported"},
		{name: "unknown topic", method: "POST", path: "/Subscription",
			body: []byte(strings.Replace(string(subscriptionBody(map[string]any{"type": "websocket"}, nil)),
				criticalTopic, "https://example.org/SubscriptionTopic/no-such-topic", 1)),
			status: 422, issue: "not-supported", diag: "unknown SubscriptionTopic"},
		{name: "cross-version extension on Subscription", method: "POST", path: "/Subscription",
			body: subscriptionBody(map[string]any{"type": "websocket"}, map[string]any{"extension": []any{map[string]any{
				"url": "http://hl7.org/fhir/5.0/StructureDefinition/extension-Subscription.topic", "valueCanonical": criticalTopic}}}),
			status: 422, issue: "not-supported", diag: "5.0"},
		{name: "cross-version extension on the channel", method: "POST", path: "/Subscription",
			body: subscriptionBody(map[string]any{"type": "websocket", "extension": []any{map[string]any{
				"url": "http://hl7.org/fhir/5.0/StructureDefinition/extension-Subscription.heartbeatPeriod", "valueUnsignedInt": 5}}}, nil),
			status: 422, issue: "not-supported"},
		{name: "unsupported payload MIME type", method: "POST", path: "/Subscription",
			body:   subscriptionBody(map[string]any{"type": "websocket", "payload": "application/fhir+xml"}, nil),
			status: 422, issue: "not-supported", diag: "MIME"},
		{name: "unsupported payload content", method: "POST", path: "/Subscription",
			body: subscriptionBody(map[string]any{"type": "websocket", "_payload": map[string]any{"extension": []any{map[string]any{
				"url":       "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-payload-content",
				"valueCode": "everything"}}}}, nil),
			status: 422, issue: "not-supported"},
		{name: "filter on a parameter the topic does not allow", method: "POST", path: "/Subscription",
			body: subscriptionBody(map[string]any{"type": "websocket"}, map[string]any{"_criteria": map[string]any{"extension": []any{map[string]any{
				"url":         "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-filter-criteria",
				"valueString": "Observation?bogus=1"}}}}),
			status: 422, issue: "not-supported"},
		{name: "classic criteria with an unknown parameter", method: "POST", path: "/Subscription",
			body:   []byte(`{"resourceType":"Subscription","status":"requested","reason":"x","criteria":"Observation?foo=bar","channel":{"type":"websocket"}}`),
			status: 422, issue: "not-supported"},
		{name: "client submits status error", method: "POST", path: "/Subscription",
			body:   []byte(`{"resourceType":"Subscription","status":"error","reason":"x","criteria":"Observation?code=1","channel":{"type":"websocket"}}`),
			status: 422, issue: "invalid", diag: "status"},
		{name: "seeded Subscription updated to an unknown channel type", method: "PUT", path: "/Subscription/" + env.classic,
			body:   []byte(`{"resourceType":"Subscription","id":"` + env.classic + `","status":"requested","reason":"x","criteria":"Observation?code=1","channel":{"type":"sms"}}`),
			status: 422, issue: "not-supported"},

		// ---- legacy JSON channel /ws
		{name: "ws legacy: GET without upgrade", method: "GET", path: "/ws", status: 426, plain: true},
		{name: "ws legacy: POST to the websocket path", method: "POST", path: "/ws", body: []byte(`{}`), status: 405, issue: "not-supported"},
		{name: "ws legacy: client_id too long", ws: &wsScript{path: "/ws?client_id=" + strings.Repeat("c", 200), dialStatus: 400}},
		{name: "ws legacy: malformed JSON", ws: &wsScript{path: "/ws", send: []wsFrame{text(`{"type":"subscribe","data":{`)},
			errorFrame: "invalid_json", probe: legacyProbe}},
		{name: "ws legacy: 10k-deep nested JSON", ws: &wsScript{path: "/ws", send: []wsFrame{text(`{"type":"subscribe","data":` + deep + `}`)},
			errorFrame: "invalid_json", probe: legacyProbe}},
		{name: "ws legacy: JSON array instead of an object", ws: &wsScript{path: "/ws", send: []wsFrame{text(`[1,2,3]`)},
			errorFrame: "invalid_json", probe: legacyProbe}},
		{name: "ws legacy: unknown message type", ws: &wsScript{path: "/ws", send: []wsFrame{text(`{"type":"drop_tables"}`)},
			errorFrame: "unknown_type", probe: legacyProbe}},
		{name: "ws legacy: subscribe without subscription_id", ws: &wsScript{path: "/ws",
			send:       []wsFrame{text(`{"type":"subscribe","data":{"resource_types":["Observation"]}}`)},
			errorFrame: "missing_field", probe: legacyProbe}},
		{name: "ws legacy: resource type that is a path", ws: &wsScript{path: "/ws",
			send:       []wsFrame{text(`{"type":"subscribe","data":{"subscription_id":"s","resource_types":["../../etc/passwd"]}}`)},
			errorFrame: "invalid_field", probe: legacyProbe}},
		{name: "ws legacy: invalid patient id", ws: &wsScript{path: "/ws",
			send:       []wsFrame{text(`{"type":"subscribe","data":{"subscription_id":"s","resource_types":["*"],"patient_ids":["a b\u0000c"]}}`)},
			errorFrame: "invalid_field", probe: legacyProbe}},
		{name: "ws legacy: unsubscribe of an unknown subscription", ws: &wsScript{path: "/ws",
			send:       []wsFrame{text(`{"type":"unsubscribe","data":{"subscription_id":"never-subscribed"}}`)},
			errorFrame: "not_subscribed", probe: legacyProbe}},
		{name: "ws legacy: too many subscriptions", ws: &wsScript{path: "/ws", pace: 20 * time.Millisecond,
			send: func() []wsFrame {
				var fs []wsFrame
				for i := 0; i <= 20; i++ {
					fs = append(fs, text(fmt.Sprintf(`{"type":"subscribe","data":{"subscription_id":"s%d","resource_types":["Observation"]}}`, i)))
				}
				return fs
			}(),
			errorFrame: "too_many_subscriptions", probe: legacyProbe}},
		{name: "ws legacy: message flood", ws: &wsScript{path: "/ws", send: repeatFrames(text(`{"type":"ping"}`), 200),
			errorFrame: "rate_limited", probe: &wsProbe{send: `{"type":"ping"}`, want: `"pong"`, wait: 2500 * time.Millisecond}}},
		{name: "ws legacy: frame over the read limit", ws: &wsScript{path: "/ws",
			send: []wsFrame{text(`{"type":"ping","data":"` + strings.Repeat("x", 70<<10) + `"}`)}, closeCode: websocket.CloseMessageTooBig}},
		{name: "ws legacy: binary frame", ws: &wsScript{path: "/ws",
			send: []wsFrame{{binary: true, data: []byte(`{"type":"ping"}`)}}, closeCode: websocket.CloseUnsupportedData}},
		{name: "ws legacy: invalid UTF-8 text frame", ws: &wsScript{path: "/ws",
			send: []wsFrame{rawText([]byte("{\"type\":\"ping\xff\xfe\"}"))}, closeCode: websocket.CloseInvalidFramePayloadData}},

		// ---- R4 classic /websocket
		{name: "ws r4: GET without upgrade", method: "GET", path: "/websocket", status: 426, plain: true},
		{name: "ws r4: bind an unknown subscription", ws: &wsScript{path: "/websocket", send: []wsFrame{text("bind does-not-exist")},
			errorFrame: "subscription not found", closeCode: websocket.ClosePolicyViolation, closeReason: "subscription-not-found"}},
		{name: "ws r4: bind a malformed id", ws: &wsScript{path: "/websocket", send: []wsFrame{text("bind ../../" + strings.Repeat("x", 5000))},
			errorFrame: "not a subscription id", closeCode: websocket.ClosePolicyViolation}},
		{name: "ws r4: unexpected message", ws: &wsScript{path: "/websocket", send: []wsFrame{text("DROP TABLE subscriptions")},
			errorFrame: "unexpected client message", probe: r4Probe}},
		{name: "ws r4: message flood", ws: &wsScript{path: "/websocket", send: repeatFrames(text("hello"), 200),
			errorFrame: "rate limited", probe: &wsProbe{send: "hello", want: "error unexpected", wait: 2500 * time.Millisecond}}},
		{name: "ws r4: frame over the read limit", ws: &wsScript{path: "/websocket",
			send: []wsFrame{text("bind " + strings.Repeat("a", 70<<10))}, closeCode: websocket.CloseMessageTooBig}},
		{name: "ws r4: binary frame", ws: &wsScript{path: "/websocket",
			send: []wsFrame{{binary: true, data: []byte("bind " + env.classic)}}, closeCode: websocket.CloseUnsupportedData}},

		// ---- Backport /ws/subscriptions
		{name: "ws backport: garbage token", ws: &wsScript{path: "/ws/subscriptions", send: []wsFrame{text("bind-with-token not-a-token")},
			closeCode: websocket.ClosePolicyViolation, closeReason: "invalid-or-expired-token"}},
		{name: "ws backport: token signed with another key", ws: &wsScript{path: "/ws/subscriptions", send: []wsFrame{text("bind-with-token " + forged)},
			closeCode: websocket.ClosePolicyViolation, closeReason: "invalid-or-expired-token"}},
		{name: "ws backport: unsigned alg=none token", ws: &wsScript{path: "/ws/subscriptions",
			send:      []wsFrame{text(`{"type":"bind-with-token","payload":{"token":"` + algNone + `"}}`)},
			closeCode: websocket.ClosePolicyViolation, closeReason: "invalid-or-expired-token"}},
		{name: "ws backport: tampered real token", run: func(t *testing.T) {
			tok := []byte(wsToken(t))
			i := len(tok) - 10 // inside the signature, away from its padding bits
			if tok[i] == 'A' {
				tok[i] = 'B'
			} else {
				tok[i] = 'A'
			}
			runWSCase(t, env.base, &wsScript{path: "/ws/subscriptions", send: []wsFrame{text("bind-with-token " + string(tok))},
				closeCode: websocket.ClosePolicyViolation, closeReason: "invalid-or-expired-token"})
		}},
		{name: "ws backport: oversized token", ws: &wsScript{path: "/ws/subscriptions",
			send:      []wsFrame{text("bind-with-token " + strings.Repeat("a", 20<<10))},
			closeCode: websocket.ClosePolicyViolation}},
		{name: "ws backport: unexpected message", ws: &wsScript{path: "/ws/subscriptions", send: []wsFrame{text("GET / HTTP/1.1")},
			closeCode: websocket.ClosePolicyViolation, closeReason: "expected-bind-with-token"}},
		{name: "ws backport: message flood", ws: &wsScript{path: "/ws/subscriptions", send: repeatFrames(text(`{"type":"ping"}`), 200),
			errorFrame: "rate-limited", probe: &wsProbe{send: `{"type":"ping"}`, want: `"pong"`, wait: 2500 * time.Millisecond}}},
		{name: "ws backport: frame over the read limit", ws: &wsScript{path: "/ws/subscriptions",
			send: []wsFrame{text(`{"type":"ping","pad":"` + strings.Repeat("x", 70<<10) + `"}`)}, closeCode: websocket.CloseMessageTooBig}},
		{name: "ws backport: invalid UTF-8 text frame", ws: &wsScript{path: "/ws/subscriptions",
			send: []wsFrame{rawText([]byte("bind-with-token \xff\xfe\xfd"))}, closeCode: websocket.CloseInvalidFramePayloadData}},

		// ---- floods
		{name: "REST flood of broken bodies", run: func(t *testing.T) {
			floodHTTP(t, env.base, 300, 8, func(i int) (*http.Request, int) {
				r, _ := http.NewRequest("POST", env.base+"/Observation", strings.NewReader(fmt.Sprintf(`{"resourceType":"Observation","status":"final","code":{"text":"%d"`, i)))
				r.Header.Set("Content-Type", "application/fhir+json")
				return r, http.StatusBadRequest
			})
		}},
		{name: "websocket connection flood dropped without close", run: func(t *testing.T) {
			d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
			url := "ws" + strings.TrimPrefix(env.base, "http")
			var conns []*websocket.Conn
			for i := 0; i < 60; i++ {
				path := []string{"/ws", "/websocket", "/ws/subscriptions"}[i%3]
				c, resp, err := d.Dial(url+path, nil)
				if err != nil {
					t.Fatalf("dial %s #%d: %v (%v)", path, i, err, resp)
				}
				_ = c.WriteMessage(websocket.TextMessage, []byte("{"))
				conns = append(conns, c)
			}
			for _, c := range conns {
				_ = c.NetConn().Close() // no close frame
			}
		}},
	}
	return cases
}

// gzipped is b in gzip.
func gzipped(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	_, _ = w.Write(b) // a bytes.Buffer does not fail
	_ = w.Close()
	return buf.Bytes()
}
