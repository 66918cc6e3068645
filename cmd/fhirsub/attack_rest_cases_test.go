package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
)

// attacks is the REST attack table (TestRESTAttacks). Order matters only
// for the scripted cases at the end (secretKept, quota).
func (s *attackServer) attacks(t *testing.T) []restAttack {
	t.Helper()
	const (
		get, post, put, del = "GET", "POST", "PUT", "DELETE"
	)
	A, subsOnly := s.tokA, s.subsOnly
	obsForB := criticalObservation("pat-b", "2823-3", "planted-by-a")
	obsBUpdate := withID(criticalObservation("pat-a", "2823-3", "stolen"), s.obsB)
	hiddenBody := []byte{}
	sameAsMissing := func(_ int, body []byte) error {
		if !bytes.Equal(body, hiddenBody) {
			return fmt.Errorf("a hidden resource answers %s, a missing one %s", body, hiddenBody)
		}
		return nil
	}
	// the answer for a missing Observation is what every hidden one must equal
	if _, b, err := s.do(restAttack{tok: A, method: get, path: "/Observation/does-not-exist"}); err == nil {
		hiddenBody = b
	}
	masked := func(_ int, body []byte) error {
		if !bytes.Contains(body, []byte(`Authorization: ***`)) {
			return fmt.Errorf("the header is not shown masked")
		}
		return nil
	}
	var cs []restAttack
	add := func(a restAttack) {
		a.attacker = a.attacker || a.tok != s.tokB && a.tok != s.admin && a.tok != s.pract
		cs = append(cs, a)
	}

	// REST read, vread, history: outside the compartment is 404, like missing.
	for _, c := range []struct{ name, path string }{
		{"A reads B", "/Patient/pat-b"},
		{"A reads B's Observation", "/Observation/" + s.obsB},
		{"A vreads B's Observation v1", "/Observation/" + s.obsB + "/_history/1"},
		{"A vreads B's Observation v2", "/Observation/" + s.obsB + "/_history/2"},
		{"A reads B's Observation history", "/Observation/" + s.obsB + "/_history"},
		{"A reads B's history", "/Patient/pat-b/_history"},
		{"A reads B's Observation history since a future date", "/Observation/" + s.obsB + "/_history?_since=2999-01-01T00:00:00Z"},
		{"A reads B's Observation history at this year", "/Observation/" + s.obsB + "/_history?_at=" + time.Now().UTC().Format("2006")},
		{"A reads a missing Observation's history since a future date", "/Observation/does-not-exist/_history?_since=2999-01-01T00:00:00Z"},
		{"A reads B's Condition", "/Condition/" + s.conB},
		{"A reads B's Subscription", "/Subscription/" + s.subB},
		{"A reads B's deleted Observation", "/Observation/" + s.goneB},
		{"A vreads B's deleted Observation", "/Observation/" + s.goneB + "/_history/1"},
		{"A vreads B's deletion", "/Observation/" + s.goneB + "/_history/2"},
	} {
		add(restAttack{name: c.name, tok: A, method: get, path: c.path, want: []int{404}, check: sameAsMissing})
	}
	add(restAttack{name: "A reads a missing Observation", tok: A, method: get, path: "/Observation/does-not-exist", want: []int{404}, check: sameAsMissing})
	// HEAD is a GET without the body: the same decision, nothing to tell apart
	empty := func(_ int, body []byte) error {
		if len(body) != 0 {
			return fmt.Errorf("HEAD answered a body: %s", body)
		}
		return nil
	}
	add(restAttack{name: "A HEADs B's Observation", tok: A, method: "HEAD", path: "/Observation/" + s.obsB, want: []int{404}, check: empty})
	add(restAttack{name: "A HEADs B's Subscription", tok: A, method: "HEAD", path: "/Subscription/" + s.subB, want: []int{404}, check: empty})
	// a conditional read answers 304 only after the access decision
	add(restAttack{name: "A conditional-reads B's Observation (If-None-Match *)", tok: A, method: get, path: "/Observation/" + s.obsB,
		headers: []string{"If-None-Match", "*"}, want: []int{404}, check: sameAsMissing})
	add(restAttack{name: "A conditional-reads B's Observation (If-Modified-Since)", tok: A, method: get, path: "/Observation/" + s.obsB,
		headers: []string{"If-Modified-Since", "Fri, 01 Jan 2100 00:00:00 GMT"}, want: []int{404}, check: sameAsMissing})

	// REST search and history: B's resources never match.
	for _, c := range []struct{ name, path string }{
		{"A searches B's Observations by subject", "/Observation?subject=Patient/pat-b"},
		{"A searches B's Observations by patient", "/Observation?patient=pat-b"},
		{"A searches B's Observation by _id", "/Observation?_id=" + s.obsB},
		{"A searches Patients by the start of B's name", "/Patient?name=" + markerB[:8]},
		{"A searches B by _id", "/Patient?_id=pat-b"},
		{"A searches Conditions of B", "/Condition?subject=pat-b"},
		{"A searches B's Subscriptions", "/Subscription?_id=" + s.subB},
		{"A searches B's compartment for Observations", "/Patient/pat-b/Observation"},
		{"A searches B's compartment for Conditions", "/Patient/pat-b/Condition"},
		{"A searches B's compartment for B", "/Patient/pat-b/Patient"},
	} {
		add(restAttack{name: c.name, tok: A, method: get, path: c.path, want: []int{200}, check: total0})
	}
	for _, c := range []struct{ name, path string }{
		{"A searches all Observations", "/Observation"},
		{"A reads type history of Observation", "/Observation/_history"},
		{"A reads system history", "/_history"},
		{"A searches all Subscriptions", "/Subscription"},
		{"A searches all Conditions", "/Condition"},
	} {
		add(restAttack{name: c.name, tok: A, method: get, path: c.path, want: []int{200}})
	}
	add(restAttack{name: "A searches all types for B's resources", tok: A, method: get, path: "/?_id=pat-b," + s.obsB + "," + s.conB, want: []int{200}, check: total0})
	add(restAttack{name: "A searches all types for B's tag-free data", tok: A, method: get, path: "/?_type=Patient,Observation,Condition&_id=pat-b," + s.obsB + "," + s.conB,
		want: []int{200}, check: total0})
	add(restAttack{name: "A POST /_search for B", tok: A, method: post, path: "/_search", body: "_id=pat-b," + s.obsB,
		ctype: "application/x-www-form-urlencoded", want: []int{200}, check: total0})
	add(restAttack{name: "A POST _search for B", tok: A, method: post, path: "/Observation/_search", body: "subject=Patient/pat-b",
		ctype: "application/x-www-form-urlencoded", want: []int{200}, check: total0})

	// REST writes on B's data.
	add(restAttack{name: "A deletes B's Observation", tok: A, method: del, path: "/Observation/" + s.obsB, want: []int{404}, check: sameAsMissing})
	add(restAttack{name: "A updates B's Observation", tok: A, method: put, path: "/Observation/" + s.obsB, body: obsBUpdate, want: []int{403}})
	jsonPatch := `[{"op":"replace","path":"/status","value":"cancelled"}]`
	for _, c := range []struct{ name, path string }{
		{"A patches B's Observation", "/Observation/" + s.obsB},
		{"A conditional-patches B's Observation by _id", "/Observation?_id=" + s.obsB},
		{"A conditional-patches B's Observations by subject", "/Observation?subject=Patient/pat-b"},
	} {
		add(restAttack{name: c.name, tok: A, method: "PATCH", path: c.path, body: jsonPatch, ctype: "application/json-patch+json", want: []int{404}})
	}
	add(restAttack{name: "A creates an Observation for B", tok: A, method: post, path: "/Observation", body: obsForB, want: []int{403}})
	add(restAttack{name: "A deletes B's Subscription", tok: A, method: del, path: "/Subscription/" + s.subB, want: []int{404}})
	add(restAttack{name: "subscription writer deletes B's Subscription", tok: s.subsWrite, method: del, path: "/Subscription/" + s.subB, want: []int{403}})
	add(restAttack{name: "A's $status of B's Subscription", tok: A, method: get, path: "/Subscription/" + s.subB + "/$status", want: []int{403, 404}})
	add(restAttack{name: "A's $events of B's Subscription", tok: A, method: get, path: "/Subscription/" + s.subB + "/$events", want: []int{403, 404}})

	// A subscriptions-only token reads no clinical data, and sees
	// Subscriptions with their secrets masked.
	add(restAttack{name: "subscriptions-only reads B's Observation", tok: subsOnly, method: get, path: "/Observation/" + s.obsB, want: []int{403}})
	add(restAttack{name: "subscriptions-only searches Observations", tok: subsOnly, method: get, path: "/Observation?subject=Patient/pat-b", want: []int{403}})
	add(restAttack{name: "subscriptions-only reads system history", tok: subsOnly, method: get, path: "/_history", want: []int{200}})
	add(restAttack{name: "subscriptions-only reads B's Subscription", tok: subsOnly, method: get, path: "/Subscription/" + s.subB, want: []int{200}, check: masked})
	add(restAttack{name: "subscriptions-only searches Subscriptions", tok: subsOnly, method: get, path: "/Subscription", want: []int{200}, check: masked})
	add(restAttack{name: "subscriptions-only reads B's Subscription history", tok: subsOnly, method: get, path: "/Subscription/" + s.subB + "/_history", want: []int{200}, check: masked})
	// batch GET entries other than reads and searches run through the routes, as the caller
	add(restAttack{name: "A batch vreads and HEADs B's Observation, reads its history", tok: A, method: post, path: "/",
		body: bundle("batch", entry(get, "Observation/"+s.obsB+"/_history/1", nil), entry("HEAD", "Observation/"+s.obsB, nil),
			entry(get, "Observation/"+s.obsB+"/_history", nil), entry(get, "Patient/pat-b/_history", nil)),
		want: []int{200}, check: wantEntries("404", "404", "404", "404")})
	add(restAttack{name: "A batch searches all types for B", tok: A, method: post, path: "/",
		body: bundle("batch", entry(get, "?_id=pat-b,"+s.obsB, nil), entry(get, "_history", nil)), want: []int{200}, check: wantEntries("200", "200")})
	add(restAttack{name: "subscriptions-only batch reads B's Observation", tok: subsOnly, method: post, path: "/",
		body: bundle("batch", entry(get, "Observation/"+s.obsB, nil)), want: []int{200}, check: wantEntries("403")})

	// Secrets are masked for the owner and the admin too.
	add(restAttack{name: "owner reads its Subscription", tok: s.tokB, method: get, path: "/Subscription/" + s.subB, want: []int{200}, check: masked})
	add(restAttack{name: "admin reads B's Subscription", tok: s.admin, method: get, path: "/Subscription/" + s.subB, want: []int{200}, check: masked})
	add(restAttack{name: "admin vreads B's Subscription", tok: s.admin, method: get, path: "/Subscription/" + s.subB + "/_history/1", want: []int{200}, check: masked})
	add(restAttack{name: "admin searches Subscriptions", tok: s.admin, method: get, path: "/Subscription?_id=" + s.subB, want: []int{200}, check: masked})
	add(restAttack{name: "admin batch reads B's Subscription", tok: s.admin, method: post, path: "/",
		body: bundle("batch", entry(get, "Subscription/"+s.subB, nil), entry(get, "Subscription?_id="+s.subB, nil)), want: []int{200}, check: masked})
	// Controls: the probes above do find B's data for a token allowed to
	// see it, so their empty answers mean something.
	hasMarker := func(_ int, body []byte) error {
		if !bytes.Contains(body, []byte(markerB)) {
			return fmt.Errorf("the control does not find B's data")
		}
		return nil
	}
	add(restAttack{name: "control: practitioner reads B", tok: s.pract, method: get, path: "/Patient/pat-b", want: []int{200}, check: hasMarker})
	add(restAttack{name: "control: practitioner searches B's name", tok: s.pract, method: get, path: "/Patient?name=" + markerB[:8], want: []int{200}, check: hasMarker})
	add(restAttack{name: "control: B searches its Observations", tok: s.tokB, method: get, path: "/Observation?subject=Patient/pat-b", want: []int{200}, check: hasMarker})
	add(restAttack{name: "control: B reads its deleted Observation", tok: s.tokB, method: get, path: "/Observation/" + s.goneB, want: []int{410}})
	add(restAttack{name: "A batch reads B's deleted Observation", tok: A, method: post, path: "/", body: bundle("batch", entry(get, "Observation/"+s.goneB, nil)),
		want: []int{200}, check: wantEntries("404")})
	add(restAttack{name: "control: B batch reads itself", tok: s.tokB, method: post, path: "/", body: bundle("batch",
		entry(get, "Patient/pat-b", nil), entry(get, "Observation/"+s.obsB, nil)), want: []int{200}, check: hasMarker})

	// Batch and transaction entries are authorized like their REST twins.
	add(restAttack{name: "A batch reads B", tok: A, method: post, path: "/", body: bundle("batch",
		entry(get, "Patient/pat-b", nil), entry(get, "Observation/"+s.obsB, nil), entry(get, "Observation/does-not-exist", nil), entry(get, "Patient/pat-a", nil)),
		want: []int{200}, check: wantEntries("404", "404", "404", "200")})
	add(restAttack{name: "A batch searches B", tok: A, method: post, path: "/", body: bundle("batch", entry(get, "Observation?subject=Patient/pat-b", nil)),
		want: []int{200}, check: total0})
	add(restAttack{name: "A batch deletes B's Observation", tok: A, method: post, path: "/", body: bundle("batch", entry(del, "Observation/"+s.obsB, nil)),
		want: []int{200}, check: wantEntries("404")})
	add(restAttack{name: "A batch updates B's Observation", tok: A, method: post, path: "/", body: bundle("batch", entry(put, "Observation/"+s.obsB, obsBUpdate)),
		want: []int{200}, check: wantEntries("403")})
	add(restAttack{name: "A batch creates for B", tok: A, method: post, path: "/", body: bundle("batch", entry(post, "Observation", obsForB)),
		want: []int{200}, check: wantEntries("403")})
	add(restAttack{name: "A batch deletes B's Subscription", tok: A, method: post, path: "/", body: bundle("batch", entry(del, "Subscription/"+s.subB, nil)),
		want: []int{200}, check: wantEntries("404")})
	add(restAttack{name: "subscription writer batch deletes B's Subscription", tok: s.subsWrite, method: post, path: "/",
		body: bundle("batch", entry(del, "Subscription/"+s.subB, nil)), want: []int{200}, check: wantEntries("403")})
	add(restAttack{name: "admin batch deletes a topic in use", tok: s.admin, method: post, path: "/",
		body: bundle("batch", entry(del, "SubscriptionTopic/critical-result", nil)), want: []int{200}, check: wantEntries("409")})
	add(restAttack{name: "A transaction reads B", tok: A, method: post, path: "/", body: bundle("transaction", entry(get, "Patient/pat-b", nil)),
		want: []int{200}, check: wantEntries("404")})
	add(restAttack{name: "A transaction deletes B's Observation", tok: A, method: post, path: "/", body: bundle("transaction",
		entry(post, "Observation", criticalObservation("pat-a", "2823-3", "tx")), entry(del, "Observation/"+s.obsB, nil)), want: []int{404}})
	add(restAttack{name: "A transaction creates for B", tok: A, method: post, path: "/", body: bundle("transaction", entry(post, "Observation", obsForB)), want: []int{403}})
	add(restAttack{name: "A transaction updates B", tok: A, method: post, path: "/", body: bundle("transaction",
		entry(put, "Patient/pat-b", map[string]any{"resourceType": "Patient", "id": "pat-b"})), want: []int{403}})
	add(restAttack{name: "A transaction deletes B's Subscription", tok: A, method: post, path: "/", body: bundle("transaction", entry(del, "Subscription/"+s.subB, nil)), want: []int{404}})
	// a conditional reference resolves with A's search: B's Patient is as
	// missing as one that does not exist, A's own resolves
	notFound := func(_ int, body []byte) error {
		if !bytes.Contains(body, []byte("no resource matches")) {
			return fmt.Errorf("want the answer of a search that finds nothing, got %s", body)
		}
		return nil
	}
	add(restAttack{name: "A transaction refers to B by a search", tok: A, method: post, path: "/", body: bundle("transaction",
		entry(post, "Observation", criticalObservation("pat-a", "2823-3", "tx-ref")), entry(post, "Observation", withSubject(criticalObservation("pat-a", "2823-3", "tx-ref"), "Patient?_id=pat-b"))),
		want: []int{412}, check: notFound})
	add(restAttack{name: "A transaction refers to a missing Patient by a search", tok: A, method: post, path: "/", body: bundle("transaction",
		entry(post, "Observation", withSubject(criticalObservation("pat-a", "2823-3", "tx-ref"), "Patient?_id=does-not-exist"))),
		want: []int{412}, check: notFound})
	add(restAttack{name: "A transaction refers to A by a search", tok: A, method: post, path: "/", body: bundle("transaction",
		entry(post, "Observation", withSubject(criticalObservation("pat-a", "2823-3", "tx-ref-own"), "Patient?_id=pat-a"))),
		want: []int{200}, check: func(_ int, body []byte) error {
			if !bytes.Contains(body, []byte(`"reference":"Patient/pat-a"`)) {
				return fmt.Errorf("the reference was not resolved to Patient/pat-a: %s", body)
			}
			return nil
		}})

	// Authentication on every route and method.
	bigBatch := make([]map[string]any, 5000)
	for i := range bigBatch {
		bigBatch[i] = entry(get, "Patient/pat-b", nil)
	}
	for _, c := range []struct {
		name, tok, method, path string
		body                    any
		want                    int
	}{
		{"no token reads B", "", get, "/Patient/pat-b", nil, 401},
		{"no token HEADs B", "", "HEAD", "/Patient/pat-b", nil, 401},
		{"no token searches all types at / (the dashboard's path)", "", get, "/?_id=pat-b", nil, 401},
		{"no token POST /_search", "", post, "/_search", "_id=pat-b", 401},
		{"no token batch", "", post, "/", bundle("batch", entry(get, "Patient/pat-b", nil)), 401},
		{"no token transaction", "", post, "/", bundle("transaction", entry(post, "Patient", map[string]any{"resourceType": "Patient"})), 401},
		{"no token 5,000-entry batch", "", post, "/", bundle("batch", bigBatch...), 401},
		{"no token deletes B's Observation", "", del, "/Observation/" + s.obsB, nil, 401},
		{"no token system history", "", get, "/_history", nil, 401},
		{"no token POST to a websocket path", "", post, "/ws", "x", 401},
		{"no token PUT a dashboard file", "", put, "/ui/app.js", "x", 401},
		{"no token DELETE /", "", del, "/", nil, 401},
		{"expired token reads B", s.expired, get, "/Patient/pat-b", nil, 401},
		{"expired token batch", s.expired, post, "/", bundle("batch", entry(get, "Patient/pat-b", nil)), 401},
		{"expired token reads B's Subscription", s.expired, get, "/Subscription/" + s.subB, nil, 401},
		{"forged token reads B", s.forged, get, "/Patient/pat-b", nil, 401},
		{"forged token batch", s.forged, post, "/", bundle("batch", entry(get, "Patient/pat-b", nil)), 401},
		{"alg none token reads B", s.algNone, get, "/Patient/pat-b", nil, 401},
		{"access_token in the query", "", get, "/Patient/pat-b?access_token=" + s.admin, nil, 400},
	} {
		add(restAttack{name: c.name, tok: c.tok, method: c.method, path: c.path, body: c.body, want: []int{c.want}, attacker: true})
	}

	// Limits: clear 4xx, never 500.
	add(restAttack{name: "501 OR values", tok: A, method: get, path: "/Observation?code=" + orValues(501), want: []int{400},
		check: says("OR values per parameter")})
	add(restAttack{name: "1,000 _id parameters", tok: A, method: get, path: "/Observation?" + repeatParam("_id", 1000), want: []int{400},
		check: says("parameters per search")})
	add(restAttack{name: "1,000 _id parameters in a batch", tok: A, method: post, path: "/", body: bundle("batch", entry(get, "Observation?"+repeatParam("_id", 1000), nil)),
		want: []int{200}, check: wantEntries("400")})
	add(restAttack{name: "body over the limit", tok: A, method: post, path: "/Patient", body: `{"resourceType":"Patient","text":"` + strings.Repeat("x", 11<<20) + `"}`,
		want: []int{413}})
	add(restAttack{name: "body dripping a byte every 2 s", run: s.drip, want: []int{408}, attacker: true})
	add(restAttack{name: "websocket that never binds", run: s.wsNeverBinds, want: []int{200}, attacker: true})
	add(restAttack{name: "endpoint body in Subscription.error and $status", want: []int{200},
		run: s.errorEcho(s.hook.url+"/fail", "HTTP 500 Internal Server Error", "admin console", "10.0.0.1")})
	add(restAttack{name: "network error details in Subscription.error", want: []int{200},
		run: s.errorEcho("http://127.0.0.1:1/closed", "could not be reached", "connection refused", "dial tcp")})
	add(restAttack{name: "legacy channel shows a Subscription change masked", run: s.legacyMasked, want: []int{200}})
	add(restAttack{name: "masked secrets sent back are kept", run: s.secretKept, want: []int{200}})
	add(restAttack{name: "subscriptions past the per-owner quota", run: s.quota, want: []int{429}, attacker: true, check: says("limit per owner")})
	return cs
}

func says(text string) func(int, []byte) error {
	return func(_ int, body []byte) error {
		if !bytes.Contains(body, []byte("OperationOutcome")) || !bytes.Contains(body, []byte(text)) {
			return fmt.Errorf("want an OperationOutcome saying %q", text)
		}
		return nil
	}
}
