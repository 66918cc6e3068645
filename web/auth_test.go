package web_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/fhirsub/fhirsub/web"
)

const (
	testSecret   = "0123456789abcdef0123456789abcdef-test-secret"
	testIssuer   = "https://issuer.example"
	testAudience = "https://fhir.example"
	// markers of patient B's data: no response to a token without access
	// to B may contain them.
	markerB    = "BravoMarker"
	markerBObs = "BRAVO-SECRET"
)

// claims returns valid claims for the test issuer and audience.
func claims(scope string, extra ...any) jwt.MapClaims {
	now := time.Now()
	c := jwt.MapClaims{"iss": testIssuer, "aud": testAudience, "sub": "user-1", "scope": scope,
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix()}
	for i := 0; i+1 < len(extra); i += 2 {
		k := extra[i].(string)
		if extra[i+1] == nil {
			delete(c, k)
		} else {
			c[k] = extra[i+1]
		}
	}
	return c
}

func signHS(t *testing.T, c jwt.MapClaims) string {
	t.Helper()
	return signWith(t, jwt.SigningMethodHS256, []byte(testSecret), c, nil)
}

func signWith(t *testing.T, m jwt.SigningMethod, key any, c jwt.MapClaims, header map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, c)
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return s
}

// unsigned builds a token with the given header and an empty signature.
func unsigned(t *testing.T, header map[string]any, c jwt.MapClaims) string {
	t.Helper()
	h, _ := json.Marshal(header)
	p, _ := json.Marshal(c)
	enc := base64.RawURLEncoding.EncodeToString
	return enc(h) + "." + enc(p) + "."
}

// hsAuthenticator verifies the tests' HS256 tokens (testSecret, with the
// test issuer and audience).
func hsAuthenticator(t *testing.T) *web.Authenticator {
	t.Helper()
	a, err := web.NewAuthenticator(context.Background(), web.AuthConfig{
		Mode: web.AuthHS256, Secret: []byte(testSecret), Issuer: testIssuer, Audience: testAudience,
	})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// authFixture is a server with HS256 auth and two patients' data.
type authFixture struct {
	srv              *testServer
	patA, patB, patC string
	obsA, obsB, conB string
	admin            string
}

func newAuthFixture(t *testing.T) *authFixture {
	t.Helper()
	a := hsAuthenticator(t)
	f := &authFixture{srv: mustServer(t, func(c *web.Config) { c.Auth = a })}
	f.admin = "Bearer " + signHS(t, claims("system/*.cruds"))
	create := func(body map[string]any) string {
		r := f.srv.do("POST", "/"+body["resourceType"].(string), body, "Authorization", f.admin).wantStatus(t, http.StatusCreated)
		return str(r.JSON, "id")
	}
	f.patA = create(patient("AlphaMarker"))
	f.patB = create(patient(markerB))
	f.patC = create(patient("CharlieMarker"))
	oa := observation("Patient/"+f.patA, "8867-4", "2024-01-01")
	oa["note"] = []any{map[string]any{"text": "alpha-note"}}
	f.obsA = create(oa)
	ob := observation("Patient/"+f.patB, "8867-4", "2024-01-02")
	ob["note"] = []any{map[string]any{"text": markerBObs}}
	f.obsB = create(ob)
	ob["id"] = f.obsB
	ob["status"] = "amended"
	f.srv.do("PUT", "/Observation/"+f.obsB, ob, "Authorization", f.admin).wantStatus(t, http.StatusOK)
	f.conB = create(map[string]any{"resourceType": "Condition", "subject": map[string]any{"reference": "Patient/" + f.patB},
		"code": map[string]any{"text": markerBObs}})
	return f
}

func TestAuthAttacks(t *testing.T) {
	f := newAuthFixture(t)
	bearer := func(tok string) string { return "Bearer " + tok }
	hs := func(scope string, extra ...any) string { return bearer(signHS(t, claims(scope, extra...))) }
	patA := func(scope string, extra ...any) string {
		return hs(scope, append([]any{"patient", f.patA}, extra...)...)
	}
	obsFor := func(pat string) map[string]any {
		o := observation("Patient/"+pat, "1234-5", "2024-02-02")
		o["note"] = []any{map[string]any{"text": "written by test"}}
		return o
	}
	withID := func(m map[string]any, id string) map[string]any { m["id"] = id; return m }
	now := time.Now()
	validPayload := strings.Split(signHS(t, claims("user/Observation.rs")), ".")
	escalated, _ := json.Marshal(claims("system/*.cruds"))

	tests := []struct {
		name    string
		method  string
		path    string
		body    any
		auth    string
		want    int
		seesB   bool   // the token may see patient B's data
		contain string // a fragment the body must contain
		total   string // the searchset/history total, when set
	}{
		// Authentication.
		{name: "no token", method: "GET", path: "/Patient/" + f.patA, want: 401},
		{name: "basic auth", method: "GET", path: "/Patient/" + f.patA, auth: "Basic dXNlcjpwYXNz", want: 401},
		{name: "empty bearer", method: "GET", path: "/Patient/" + f.patA, auth: "Bearer ", want: 401},
		{name: "malformed token", method: "GET", path: "/Patient/" + f.patA, auth: "Bearer abc.def", want: 401, contain: "malformed"},
		{name: "garbage segments", method: "GET", path: "/Patient/" + f.patA, auth: "Bearer !!.??.**", want: 401},
		{name: "forged signature", method: "GET", path: "/Observation/" + f.obsB,
			auth: bearer(signWith(t, jwt.SigningMethodHS256, []byte("another-secret-of-at-least-32-bytes!"), claims("system/*.cruds"), nil)), want: 401, contain: "signature"},
		{name: "payload swapped under a valid signature", method: "GET", path: "/Observation/" + f.obsB,
			auth: bearer(validPayload[0] + "." + base64.RawURLEncoding.EncodeToString(escalated) + "." + validPayload[2]), want: 401, contain: "signature"},
		{name: "signature stripped", method: "GET", path: "/Observation/" + f.obsA,
			auth: bearer(validPayload[0] + "." + validPayload[1] + "."), want: 401},
		{name: "expired", method: "GET", path: "/Observation/" + f.obsA, auth: hs("user/*.rs", "exp", now.Add(-2*time.Minute).Unix()), want: 401, contain: "expired"},
		{name: "expired within leeway", method: "GET", path: "/Observation/" + f.obsA, auth: hs("user/*.rs", "exp", now.Add(-10*time.Second).Unix()), want: 200},
		{name: "nbf in the future", method: "GET", path: "/Observation/" + f.obsA, auth: hs("user/*.rs", "nbf", now.Add(5*time.Minute).Unix()), want: 401, contain: "not valid yet"},
		{name: "iat in the future", method: "GET", path: "/Observation/" + f.obsA, auth: hs("user/*.rs", "iat", now.Add(5*time.Minute).Unix()), want: 401, contain: "future"},
		{name: "no exp", method: "GET", path: "/Observation/" + f.obsA, auth: hs("user/*.rs", "exp", nil), want: 401},
		{name: "exp of the wrong type", method: "GET", path: "/Observation/" + f.obsA, auth: hs("user/*.rs", "exp", "tomorrow"), want: 401},
		{name: "alg none", method: "GET", path: "/Observation/" + f.obsB,
			auth: bearer(unsigned(t, map[string]any{"alg": "none", "typ": "JWT"}, claims("system/*.cruds"))), want: 401, contain: "algorithm"},
		{name: "alg None", method: "GET", path: "/Observation/" + f.obsB,
			auth: bearer(unsigned(t, map[string]any{"alg": "None"}, claims("system/*.cruds"))), want: 401},
		{name: "alg HS384 with the secret", method: "GET", path: "/Observation/" + f.obsA,
			auth: bearer(signWith(t, jwt.SigningMethodHS384, []byte(testSecret), claims("user/*.rs"), nil)), want: 401, contain: "algorithm"},
		{name: "wrong issuer", method: "GET", path: "/Observation/" + f.obsA, auth: hs("user/*.rs", "iss", "https://evil.example"), want: 401, contain: "issuer"},
		{name: "missing issuer", method: "GET", path: "/Observation/" + f.obsA, auth: hs("user/*.rs", "iss", nil), want: 401},
		{name: "wrong audience", method: "GET", path: "/Observation/" + f.obsA, auth: hs("user/*.rs", "aud", "https://other.example"), want: 401, contain: "audience"},
		{name: "audience list", method: "GET", path: "/Observation/" + f.obsA, auth: hs("user/*.rs", "aud", []any{"x", testAudience}), want: 200},
		{name: "invalid scope in the token", method: "GET", path: "/Observation/" + f.obsA, auth: hs("user/*.rx"), want: 401, contain: "scope"},
		{name: "patient claim that is not an id", method: "GET", path: "/Observation/" + f.obsA, auth: hs("patient/*.rs", "patient", "a/../b"), want: 401},
		{name: "token in the query string", method: "GET", path: "/Observation/" + f.obsA + "?access_token=" + signHS(t, claims("user/*.rs")), want: 400},
		{name: "token in the query string and header", method: "GET", path: "/Observation/" + f.obsA + "?access_token=x", auth: hs("user/*.rs"), want: 400},
		{name: "lower-case bearer scheme", method: "GET", path: "/Observation/" + f.obsA, auth: "bearer " + signHS(t, claims("user/*.rs")), want: 200},
		{name: "metadata is public", method: "GET", path: "/metadata", want: 200},
		{name: "healthz is public", method: "GET", path: "/healthz", want: 200},

		// Scope escalation.
		{name: "read scope writing", method: "POST", path: "/Observation", body: obsFor(f.patC), auth: hs("user/*.rs"), want: 403, seesB: true},
		{name: "v1 read scope writing", method: "POST", path: "/Observation", body: obsFor(f.patC), auth: hs("user/Observation.read"), want: 403},
		{name: "Observation scope reading Patient", method: "GET", path: "/Patient/" + f.patA, auth: hs("user/Observation.rs"), want: 403},
		{name: "Observation scope searching Patient", method: "GET", path: "/Patient", auth: hs("user/Observation.read"), want: 403},
		{name: "v1 read works", method: "GET", path: "/Observation/" + f.obsA, auth: hs("user/Observation.read"), want: 200, contain: "alpha-note"},
		{name: "v1 write cannot read", method: "GET", path: "/Observation/" + f.obsA, auth: hs("user/Observation.write"), want: 403},
		{name: "v1 write creates", method: "POST", path: "/Observation", body: obsFor(f.patC), auth: hs("user/Observation.write"), want: 201},
		{name: "v2 r reads", method: "GET", path: "/Observation/" + f.obsA, auth: hs("user/Observation.r"), want: 200},
		{name: "v2 r cannot search", method: "GET", path: "/Observation", auth: hs("user/Observation.r"), want: 403},
		{name: "v2 s cannot read", method: "GET", path: "/Observation/" + f.obsA, auth: hs("user/Observation.s"), want: 403},
		{name: "v2 s searches", method: "GET", path: "/Observation?code=8867-4", auth: hs("user/Observation.s"), want: 200, seesB: true, total: "2"},
		{name: "v2 c cannot update", method: "PUT", path: "/Observation/" + f.obsA, body: withID(obsFor(f.patC), f.obsA), auth: hs("user/Observation.c"), want: 403},
		{name: "v2 c cannot delete", method: "DELETE", path: "/Observation/" + f.obsA, auth: hs("user/Observation.c"), want: 403},
		{name: "v2 c creates", method: "POST", path: "/Observation", body: obsFor(f.patC), auth: hs("user/Observation.c"), want: 201, seesB: true},
		{name: "v2 rs cannot delete", method: "DELETE", path: "/Observation/" + f.obsB, auth: hs("user/*.rs"), want: 403, seesB: true},
		{name: "no resource scope", method: "GET", path: "/Observation", auth: hs("openid fhirUser"), want: 403},
		{name: "system history without search scope", method: "GET", path: "/_history", auth: hs("user/*.r"), want: 403},

		// Patient compartment.
		{name: "A reads A", method: "GET", path: "/Patient/" + f.patA, auth: patA("patient/*.rs"), want: 200, contain: "AlphaMarker"},
		{name: "A reads B", method: "GET", path: "/Patient/" + f.patB, auth: patA("patient/*.rs"), want: 404},
		{name: "A reads B's Observation", method: "GET", path: "/Observation/" + f.obsB, auth: patA("patient/*.rs"), want: 404},
		{name: "A vreads B's Observation", method: "GET", path: "/Observation/" + f.obsB + "/_history/1", auth: patA("patient/*.rs"), want: 404},
		{name: "A reads B's Observation history", method: "GET", path: "/Observation/" + f.obsB + "/_history", auth: patA("patient/*.rs"), want: 404},
		{name: "A reads B's Condition with user scope", method: "GET", path: "/Condition/" + f.conB, auth: patA("user/*.rs"), want: 404},
		{name: "A type history", method: "GET", path: "/Observation/_history", auth: patA("patient/*.rs"), want: 200, contain: "alpha-note", total: "1"},
		{name: "A system history", method: "GET", path: "/_history", auth: patA("patient/*.rs"), want: 200, contain: "AlphaMarker", total: "2"},
		{name: "A searches Observation", method: "GET", path: "/Observation", auth: patA("patient/*.rs"), want: 200, contain: "alpha-note", total: "1"},
		{name: "A searches Observation by B", method: "GET", path: "/Observation?subject=Patient/" + f.patB, auth: patA("patient/Observation.rs"), want: 200, total: "0"},
		{name: "A searches Observation by code", method: "GET", path: "/Observation?code=8867-4", auth: patA("patient/Observation.read"), want: 200, total: "1"},
		{name: "A POST _search", method: "POST", path: "/Observation/_search", body: "code=8867-4", auth: patA("patient/Observation.rs"), want: 200, total: "1"},
		{name: "A searches Patient", method: "GET", path: "/Patient", auth: patA("patient/*.rs"), want: 200, contain: "AlphaMarker", total: "1"},
		// The Patient compartment search runs as the caller's search.
		{name: "A searches its compartment", method: "GET", path: "/Patient/" + f.patA + "/Observation", auth: patA("patient/*.rs"), want: 200, contain: "alpha-note", total: "1"},
		{name: "A searches B's compartment", method: "GET", path: "/Patient/" + f.patB + "/Observation", auth: patA("patient/*.rs"), want: 200, total: "0"},
		{name: "A searches B's compartment for B", method: "GET", path: "/Patient/" + f.patB + "/Patient", auth: patA("patient/*.rs"), want: 200, total: "0"},
		{name: "A searches B's Conditions by POST", method: "POST", path: "/Patient/" + f.patB + "/Condition/_search", body: "_count=10", auth: patA("patient/*.rs"), want: 200, total: "0"},
		{name: "patient scopes without a patient in B's compartment", method: "GET", path: "/Patient/" + f.patB + "/Observation", auth: hs("patient/*.rs"), want: 403},
		{name: "a user searches B's compartment", method: "GET", path: "/Patient/" + f.patB + "/Observation", auth: hs("user/Observation.rs"), want: 200, seesB: true, contain: markerBObs, total: "1"},
		{name: "a user searches B's compartment for Condition without its scope", method: "GET", path: "/Patient/" + f.patB + "/Condition", auth: hs("user/Observation.rs"), want: 403},
		{name: "A searches all types", method: "GET", path: "/?_lastUpdated=gt2000", auth: patA("patient/*.rs"), want: 200, contain: "AlphaMarker"},
		{name: "A searches all types for B", method: "GET", path: "/?_id=" + f.patB + "," + f.obsB, auth: patA("patient/*.rs"), want: 200, total: "0"},
		{name: "A searches all types by _type", method: "GET", path: "/?_type=Patient,Observation", auth: patA("patient/*.rs"), want: 200, total: "2"},
		{name: "system search without search scope", method: "GET", path: "/?_id=" + f.patA, auth: hs("user/*.r"), want: 403},
		{name: "system search of a type the scopes do not allow", method: "GET", path: "/?_type=Observation", auth: hs("user/Patient.rs"), want: 403},
		{name: "system search keeps to the types the scopes allow", method: "GET", path: "/?_id=" + f.obsB + "," + f.patB, auth: hs("user/Patient.rs"), want: 200, seesB: true, total: "1"},
		{name: "A searches Condition", method: "GET", path: "/Condition", auth: patA("patient/*.rs"), want: 200, total: "0"},
		{name: "A via fhirUser", method: "GET", path: "/Observation", auth: hs("patient/*.rs", "fhirUser", testAudience+"/Patient/"+f.patA), want: 200, total: "1"},
		{name: "A granular scope", method: "GET", path: "/Observation", auth: patA("patient/Observation.rs?code=8867-4"), want: 200, total: "1"},
		{name: "A granular scope excludes", method: "GET", path: "/Observation", auth: patA("patient/Observation.rs?code=1234-5"), want: 200, total: "0"},
		{name: "A granular scope read outside the filter", method: "GET", path: "/Observation/" + f.obsA, auth: patA("patient/Observation.rs?code=1234-5"), want: 404},
		{name: "A creates Observation for A", method: "POST", path: "/Observation", body: obsFor(f.patA), auth: patA("patient/*.cruds"), want: 201},
		{name: "A creates Observation for B", method: "POST", path: "/Observation", body: obsFor(f.patB), auth: patA("patient/*.cruds"), want: 403},
		{name: "A creates Observation for B, v1", method: "POST", path: "/Observation", body: obsFor(f.patB), auth: patA("patient/Observation.write"), want: 403},
		{name: "A creates a Patient", method: "POST", path: "/Patient", body: withID(patient("New"), f.patA), auth: patA("patient/*.cruds"), want: 403},
		{name: "A hijacks B's Observation", method: "PUT", path: "/Observation/" + f.obsB, body: withID(obsFor(f.patA), f.obsB), auth: patA("patient/*.cruds"), want: 403},
		{name: "A moves own Observation to B", method: "PUT", path: "/Observation/" + f.obsA, body: withID(obsFor(f.patB), f.obsA), auth: patA("patient/*.cruds"), want: 403},
		{name: "A creates by PUT into B", method: "PUT", path: "/Observation/new-for-b", body: withID(obsFor(f.patB), "new-for-b"), auth: patA("patient/*.cruds"), want: 403},
		{name: "A deletes B's Observation", method: "DELETE", path: "/Observation/" + f.obsB, auth: patA("patient/*.cruds"), want: 404},
		{name: "A updates B's Patient", method: "PUT", path: "/Patient/" + f.patB, body: withID(patient("Overwritten"), f.patB), auth: patA("patient/*.cruds"), want: 403},
		{name: "A updates A's Patient", method: "PUT", path: "/Patient/" + f.patA, body: withID(patient("AlphaMarker"), f.patA), auth: patA("patient/*.cruds"), want: 200},
		{name: "patient scopes without patient read", method: "GET", path: "/Observation/" + f.obsA, auth: hs("patient/*.rs"), want: 403},
		{name: "patient scopes without patient search", method: "GET", path: "/Observation", auth: hs("patient/*.*"), want: 403},
		{name: "patient scopes without patient write", method: "POST", path: "/Observation", body: obsFor(f.patC), auth: hs("patient/*.*"), want: 403},
		{name: "A batch reads B", method: "POST", path: "/", auth: patA("patient/*.cruds"), want: 200, contain: "403", body: map[string]any{
			"resourceType": "Bundle", "type": "batch", "entry": []any{
				map[string]any{"request": map[string]any{"method": "GET", "url": "Observation/" + f.obsB}},
				map[string]any{"request": map[string]any{"method": "GET", "url": "Observation?code=8867-4"}},
				map[string]any{"request": map[string]any{"method": "GET", "url": "Condition"}},
				map[string]any{"request": map[string]any{"method": "POST", "url": "Observation"}, "resource": obsFor(f.patB)},
				map[string]any{"request": map[string]any{"method": "DELETE", "url": "Condition/" + f.conB}},
			}}},
		{name: "A transaction writes into B", method: "POST", path: "/", auth: patA("patient/*.cruds"), want: 403, body: map[string]any{
			"resourceType": "Bundle", "type": "transaction", "entry": []any{
				map[string]any{"request": map[string]any{"method": "POST", "url": "Observation"}, "resource": obsFor(f.patA)},
				map[string]any{"request": map[string]any{"method": "POST", "url": "Observation"}, "resource": obsFor(f.patB)},
			}}},
		{name: "read-only transaction write", method: "POST", path: "/", auth: hs("user/*.rs"), want: 403, seesB: true, body: map[string]any{
			"resourceType": "Bundle", "type": "transaction", "entry": []any{
				map[string]any{"request": map[string]any{"method": "POST", "url": "Observation"}, "resource": obsFor(f.patA)},
			}}},

		// Broad scopes work.
		{name: "user/*.rs reads B", method: "GET", path: "/Observation/" + f.obsB, auth: hs("user/*.rs"), want: 200, seesB: true, contain: markerBObs},
		{name: "user/*.rs searches all", method: "GET", path: "/Observation?code=8867-4", auth: hs("user/*.rs"), want: 200, seesB: true, total: "2"},
		{name: "user/*.rs system history", method: "GET", path: "/_history", auth: hs("user/*.rs"), want: 200, seesB: true},
		{name: "system/*.cruds creates", method: "POST", path: "/Condition", body: map[string]any{"resourceType": "Condition",
			"subject": map[string]any{"reference": "Patient/" + f.patB}}, auth: hs("system/*.cruds"), want: 201, seesB: true},
		{name: "system/*.cruds deletes", method: "DELETE", path: "/Condition/" + f.conB, auth: hs("system/*.cruds"), want: 200, seesB: true},
	}
	if len(tests) < 30 {
		t.Fatalf("only %d cases", len(tests))
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var headers []string
			if tc.auth != "" {
				headers = append(headers, "Authorization", tc.auth)
			}
			if s, ok := tc.body.(string); ok && s != "" {
				headers = append(headers, "Content-Type", "application/x-www-form-urlencoded")
			}
			r := f.srv.do(tc.method, tc.path, tc.body, headers...)
			if r.Status != tc.want {
				t.Fatalf("status %d, want %d; body %s", r.Status, tc.want, r.Body)
			}
			if !tc.seesB {
				for _, m := range []string{markerB, markerBObs, f.patB} {
					if strings.Contains(string(r.Body), m) && !(m == f.patB && strings.Contains(tc.path, m)) {
						t.Errorf("response leaks %q: %s", m, r.Body)
					}
				}
			}
			if tc.contain != "" && !strings.Contains(string(r.Body), tc.contain) {
				t.Errorf("body does not contain %q: %s", tc.contain, r.Body)
			}
			if tc.total != "" && str(r.JSON, "total") != tc.total {
				t.Errorf("total %s, want %s: %s", str(r.JSON, "total"), tc.total, r.Body)
			}
			switch tc.want {
			case 401:
				if r.JSON["resourceType"] != "OperationOutcome" {
					t.Errorf("401 without OperationOutcome: %s", r.Body)
				}
				wa := r.Header.Get("WWW-Authenticate")
				if !strings.HasPrefix(wa, "Bearer ") {
					t.Errorf("WWW-Authenticate %q", wa)
				}
				if tc.auth != "" && strings.HasPrefix(tc.auth, "Bearer ") && len(tc.auth) > len("Bearer ") &&
					!strings.Contains(wa, `error="invalid_token"`) {
					t.Errorf("WWW-Authenticate %q lacks invalid_token", wa)
				}
			case 403:
				if r.JSON["resourceType"] != "OperationOutcome" || str(r.JSON, "issue", 0, "code") == "" {
					t.Errorf("403 without OperationOutcome: %s", r.Body)
				}
			}
		})
	}
}

// TestAuthOff checks that without an Authenticator every request has full
// access and the access is in the request context.
func TestAuthOff(t *testing.T) {
	srv := mustServer(t)
	r := srv.do("POST", "/Patient", patient("Open")).wantStatus(t, http.StatusCreated)
	srv.do("GET", "/Patient/"+str(r.JSON, "id"), nil).wantStatus(t, http.StatusOK)
	srv.do("GET", "/Patient?access_token=x", nil).wantStatus(t, http.StatusBadRequest) // an unknown search parameter, not an auth error
}
