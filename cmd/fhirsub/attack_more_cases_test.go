package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// searchAttacks: patient A reads B through includes, chains, _has and
// count oracles. A's bridge Observation references B's Observations and
// Patient/pat-b, so every include, chain or _has that forgot the caller's
// access would bring B in (or make the bridge match).
func (f *moreFixture) searchAttacks() []restAttack {
	s, A := f.attackServer, f.tokA
	br := "_id=" + f.bridge
	var cs []restAttack
	for _, c := range []struct{ name, path string }{
		{"include has-member of the bridge", "/Observation?" + br + "&_include=Observation:has-member"},
		{"include derived-from of the bridge", "/Observation?" + br + "&_include=Observation:derived-from"},
		{"include performer of the bridge", "/Observation?" + br + "&_include=Observation:performer"},
		{"include focus of the bridge", "/Observation?" + br + "&_include=Observation:focus"},
		{"include performer:Patient of the bridge", "/Observation?" + br + "&_include=Observation:performer:Patient"},
		{"include:iterate has-member", "/Observation?" + br + "&_include:iterate=Observation:has-member"},
		{"include:iterate has-member then subject", "/Observation?" + br + "&_include:iterate=Observation:has-member&_include:iterate=Observation:subject"},
		{"include every reference of the bridge", "/Observation?" + br + "&_include=Observation:has-member&_include=Observation:derived-from&_include=Observation:performer&_include=Observation:focus&_include=Observation:subject"},
	} {
		cs = append(cs, restAttack{name: "A " + c.name, tok: A, method: "GET", path: c.path, want: []int{200},
			check: f.noneOfB, attacker: true})
	}
	for _, c := range []struct{ name, path string }{
		{"revinclude Observations of pat-a", "/Patient?_id=pat-a&_revinclude=Observation:subject"},
		{"revinclude Observations that perform as pat-b", "/Patient?_revinclude=Observation:performer"},
		{"revinclude:iterate has-member", "/Observation?" + br + "&_revinclude:iterate=Observation:has-member"},
		{"revinclude of B's Observation by the bridge", "/Observation?_revinclude=Observation:has-member"},
		{"revinclude Conditions of every Patient", "/Patient?_revinclude=Condition:subject"},
		{"_elements=note on every Observation", "/Observation?_elements=note,subject"},
		{"_summary=true on every Patient", "/Patient?_summary=true"},
		{"_summary=data on every Observation", "/Observation?_summary=data"},
		{"_total=accurate on every Observation", "/Observation?_total=accurate&_count=200"},
		{"_has on Observations that B's Observations are members of", "/Patient?_has:Observation:subject:code=2823-3"},
		{"second page far away", "/Observation?_offset=100000"},
	} {
		cs = append(cs, restAttack{name: "A " + c.name, tok: A, method: "GET", path: c.path, want: []int{200}, attacker: true})
	}
	for _, c := range []struct{ name, path string }{
		{"chain performer:Patient.name (B's name)", "/Observation?performer:Patient.name=" + markerB[:8]},
		{"chain focus.name (B's name)", "/Observation?focus.name=" + markerB[:8]},
		{"chain performer:Patient._id=pat-b", "/Observation?performer:Patient._id=pat-b"},
		{"chain has-member:Observation._id (B's)", "/Observation?has-member:Observation._id=" + s.obsB},
		{"chain has-member.code (B's code)", "/Observation?has-member.code=2823-3"},
		{"chain derived-from:Observation.identifier (B's)", "/Observation?derived-from:Observation.identifier=" + b2Ident},
		{"chain subject:Patient.name (B's name)", "/Observation?subject:Patient.name=" + markerB[:8]},
		{"chain two levels has-member.subject:Patient._id", "/Observation?has-member:Observation.subject:Patient._id=pat-b"},
		{"_has Observation:subject _id (B's)", "/Patient?_has:Observation:subject:_id=" + s.obsB},
		{"_has Observation:patient identifier (B's)", "/Patient?_has:Observation:patient:identifier=" + b2Ident},
		{"_has Observation:performer (the bridge names pat-b)", "/Patient?_has:Observation:performer:code:text=bridge"},
		{"_has Observation:has-member (B's is a member)", "/Observation?_has:Observation:has-member:code:text=bridge"},
		{"_has Condition:subject (B's Condition)", "/Patient?_has:Condition:subject:_id=" + s.conB},
		{"_summary=count of B's Observations", "/Observation?subject=Patient/pat-b&_summary=count"},
		{"_summary=count by B's identifier", "/Observation?identifier=" + b2Ident + "&_summary=count"},
		{"_count=0 of B's Observations", "/Observation?patient=pat-b&_count=0"},
		{"_total=accurate of B's Observations", "/Observation?patient=pat-b&_total=accurate"},
		{"_summary=count of Patients named like B", "/Patient?name=" + markerB[:8] + "&_summary=count"},
		{"_summary=count of B's Conditions", "/Condition?patient=pat-b&_summary=count"},
		{"_summary=count of B's Subscriptions", "/Subscription?_id=" + s.subB + "&_summary=count"},
		{"_elements of B's Observation by _id", "/Observation?_id=" + s.obsB + "&_elements=note"},
		{"_id:not excluding only A's", "/Observation?_id:not=" + s.obsA + "&patient=pat-b"},
	} {
		cs = append(cs, restAttack{name: "A " + c.name, tok: A, method: "GET", path: c.path, want: []int{200},
			check: total0, attacker: true})
	}
	cs = append(cs, restAttack{name: "A's _summary=count equals what A can list", tok: A, attacker: true, want: []int{200},
		run: f.countMatchesList("/Observation")})
	cs = append(cs, restAttack{name: "A's _summary=count of Patients equals what A can list", tok: A, attacker: true, want: []int{200},
		run: f.countMatchesList("/Patient")})
	for _, c := range []struct{ name, path string }{
		{"reads B's Observation with _elements", "/Observation/" + s.obsB + "?_elements=note"},
		{"reads B's Observation with _summary=true", "/Observation/" + s.obsB + "?_summary=true"},
		{"reads B with _elements", "/Patient/pat-b?_elements=name"},
		{"reads B's second Observation", "/Observation/" + f.obsB2},
	} {
		cs = append(cs, restAttack{name: "A " + c.name, tok: A, method: "GET", path: c.path, want: []int{404},
			check: sameAs(&f.missing), attacker: true})
	}
	for _, c := range []struct{ name, path string }{
		{"type history with _summary=count", "/Observation/_history?_summary=count"},
		{"B's instance history with _summary=count", "/Observation/" + s.obsB + "/_history?_summary=count"},
		{"_has nested", "/Patient?_has:Observation:subject:_has:Observation:has-member:_id=x"},
		{"_include=*", "/Observation?_include=*"},
		{"_revinclude=*", "/Patient?_revinclude=*"},
		{"chain of five levels", "/Observation?subject:Patient.link:Patient.link:Patient.link:Patient.link:Patient.name=x"},
		{"$everything on B", "/Patient/pat-b/$everything"},
	} {
		cs = append(cs, restAttack{name: "A " + c.name, tok: A, method: "GET", path: c.path, want: []int{400, 404}, attacker: true})
	}
	return cs
}

// noneOfB checks a searchset names none of B's resources (their ids are
// not markers, so the marker check alone would not see an include of B's
// Patient without its name).
func (f *moreFixture) noneOfB(_ int, body []byte) error {
	for _, ref := range []string{"Observation/" + f.obsB, "Observation/" + f.obsB2, "Patient/pat-b", "Condition/" + f.conB} {
		if strings.Contains(string(body), `/`+ref+`"`) {
			return fmt.Errorf("%s is in the answer", ref)
		}
	}
	return nil
}

// countMatchesList compares _summary=count with the entries A can list:
// a count that includes B's resources would be an oracle.
func (f *moreFixture) countMatchesList(path string) func() (int, []byte, error) {
	return func() (int, []byte, error) {
		st, body, err := f.do(restAttack{tok: f.tokA, method: "GET", path: path + "?_summary=count"})
		if err != nil || st != 200 {
			return st, body, err
		}
		var cnt struct{ Total int }
		_ = json.Unmarshal(body, &cnt)
		st2, list, err := f.do(restAttack{tok: f.tokA, method: "GET", path: path + "?_count=1000"})
		if err != nil || st2 != 200 {
			return st2, list, err
		}
		var b struct{ Entry []any }
		_ = json.Unmarshal(list, &b)
		if cnt.Total != len(b.Entry) {
			return 0, body, fmt.Errorf("_summary=count says %d, A can list %d", cnt.Total, len(b.Entry))
		}
		return 200, append(body, list...), nil
	}
}

// writeAttacks: conditional create, update, delete and PATCH aimed at B's
// resources. None may reveal, change or delete them.
func (f *moreFixture) writeAttacks() []restAttack {
	s, A := f.attackServer, f.tokA
	own := func(tag string) map[string]any { return criticalObservation("pat-a", "2823-3", tag) }
	jp := "application/json-patch+json"
	fpReplace := func(path, value string) map[string]any {
		return map[string]any{"resourceType": "Parameters", "parameter": []any{map[string]any{"name": "operation", "part": []any{
			map[string]any{"name": "type", "valueCode": "replace"}, map[string]any{"name": "path", "valueString": path},
			map[string]any{"name": "value", "valueString": value}}}}}
	}
	ifNone := func(name, cond string) restAttack {
		return restAttack{name: name, tok: A, attacker: true, run: func() (int, []byte, error) {
			return f.doHeader("POST", "/Observation", own("ine"), "If-None-Exist", cond)
		}, want: []int{201}}
	}
	return []restAttack{
		ifNone("A If-None-Exist with B's identifier creates (no 200 with B's)", "identifier="+b2Ident),
		ifNone("A If-None-Exist with B's _id creates", "_id="+s.obsB),
		ifNone("A If-None-Exist with B's patient creates", "patient=pat-b"),
		ifNone("A If-None-Exist with a chain to B's name creates", "subject:Patient.name="+markerB[:8]),
		{name: "A conditional update by B's identifier creates A's own", tok: A, method: "PUT", path: "/Observation?identifier=" + b2Ident,
			body: own("cu"), want: []int{201}},
		{name: "A conditional update by B's _id creates A's own", tok: A, method: "PUT", path: "/Observation?_id=" + f.obsB2,
			body: own("cu2"), want: []int{201}},
		{name: "A conditional update of B's Patient by name", tok: A, method: "PUT", path: "/Patient?name=" + markerB[:8],
			body: map[string]any{"resourceType": "Patient", "name": []any{map[string]any{"family": "x"}}}, want: []int{403}},
		{name: "A conditional delete by B's identifier deletes nothing", tok: A, method: "DELETE", path: "/Observation?identifier=" + b2Ident,
			want: []int{200, 204, 404}, check: notDeleted},
		{name: "A conditional delete by B's _id deletes nothing", tok: A, method: "DELETE", path: "/Observation?_id=" + f.obsB2,
			want: []int{200, 204, 404}, check: notDeleted},
		{name: "A conditional delete of B's Patient deletes nothing", tok: A, method: "DELETE", path: "/Patient?_id=pat-b",
			want: []int{200, 204, 404}, check: notDeleted},
		{name: "A conditional delete of B's Condition deletes nothing", tok: A, method: "DELETE", path: "/Condition?patient=pat-b",
			want: []int{200, 204, 404}, check: notDeleted},
		{name: "A conditional delete through a chain to B deletes nothing", tok: A, method: "DELETE", path: "/Observation?subject:Patient._id=pat-b",
			want: []int{200, 204, 404}, check: notDeleted},
		{name: "A JSON-patches B's Observation", tok: A, method: "PATCH", path: "/Observation/" + f.obsB2, ctype: jp,
			body: `[{"op":"replace","path":"/status","value":"amended"}]`, want: []int{404}, check: sameAs(&f.patchMis)},
		{name: "A JSON-patches B with a test op (content oracle)", tok: A, method: "PATCH", path: "/Patient/pat-b", ctype: jp,
			body: `[{"op":"test","path":"/name/0/family","value":"` + markerB[:8] + `"}]`, want: []int{404}},
		{name: "A FHIRPath-patches B's Observation", tok: A, method: "PATCH", path: "/Observation/" + f.obsB2,
			body: fpReplace("Observation.status", "amended"), want: []int{404}},
		{name: "A conditional PATCH of B's Observation", tok: A, method: "PATCH", path: "/Observation?identifier=" + b2Ident, ctype: jp,
			body: `[{"op":"replace","path":"/status","value":"amended"}]`, want: []int{400, 404, 405, 412}},
		{name: "A patches the bridge into B's compartment", tok: A, method: "PATCH", path: "/Observation/" + f.bridge, ctype: jp,
			body: `[{"op":"replace","path":"/subject/reference","value":"Patient/pat-b"}]`, want: []int{403}},
		{name: "A FHIRPath-patches the bridge into B's compartment", tok: A, method: "PATCH", path: "/Observation/" + f.bridge,
			body: map[string]any{"resourceType": "Parameters", "parameter": []any{map[string]any{"name": "operation", "part": []any{
				map[string]any{"name": "type", "valueCode": "replace"}, map[string]any{"name": "path", "valueString": "Observation.subject"},
				map[string]any{"name": "value", "valueReference": ref("Patient/pat-b")}}}}}, want: []int{403}},
		{name: "A patches the id of the bridge to B's", tok: A, method: "PATCH", path: "/Observation/" + f.bridge, ctype: jp,
			body: `[{"op":"replace","path":"/id","value":"` + f.obsB2 + `"}]`, want: []int{400, 422}},
		{name: "A PUTs the bridge's body under B's id", tok: A, method: "PUT", path: "/Observation/" + f.obsB2,
			body: withID(own("steal"), f.obsB2), want: []int{403, 404, 409}},
		{name: "subscriptions-only token conditional-deletes Observations", tok: f.subsOnly, method: "DELETE", path: "/Observation?identifier=" + b2Ident,
			want: []int{403}},
		{name: "subscriptions-only token patches B's Observation", tok: f.subsOnly, method: "PATCH", path: "/Observation/" + f.obsB2, ctype: jp,
			body: `[{"op":"replace","path":"/status","value":"amended"}]`, want: []int{403, 404}},
		{name: "expired token conditional create", tok: f.expired, method: "POST", path: "/Observation", body: own("exp"), want: []int{401}},
		{name: "A deletes B's Subscription conditionally", tok: A, method: "DELETE", path: "/Subscription?_id=" + f.subB,
			want: []int{200, 204, 404}, check: notDeleted},
		{name: "B JSON-patches its header into reason (secret stays masked)", tok: s.tokB, method: "PATCH", path: "/Subscription/" + s.subB, ctype: jp,
			body: `[{"op":"copy","from":"/channel/header/0","path":"/reason"}]`, want: []int{200, 400, 422}},
		{name: "B JSON-patches its HMAC secret into reason", tok: s.tokB, method: "PATCH", path: "/Subscription/" + s.subB, ctype: jp,
			body: `[{"op":"copy","from":"/channel/extension/0/valueString","path":"/reason"}]`, want: []int{200, 400, 422}},
		{name: "B tests its header's real value by JSON Patch (no oracle)", tok: s.tokB, method: "PATCH", path: "/Subscription/" + s.subB, ctype: jp,
			body: `[{"op":"test","path":"/channel/header/0","value":"Authorization: Bearer ` + hookSecret + `"}]`, want: []int{422}},
		{name: "B moves its header where validation names it", tok: s.tokB, method: "PATCH", path: "/Subscription/" + s.subB, ctype: jp,
			body: `[{"op":"move","from":"/channel/header/0","path":"/bogus"}]`, want: []int{400, 422}},
		{name: "B FHIRPath-patches its reason (secrets kept)", tok: s.tokB, method: "PATCH", path: "/Subscription/" + s.subB,
			body: fpReplace("Subscription.reason", "patched"), want: []int{200}},
		{name: "B's endpoint still gets the real header after a PATCH", tok: s.tokB, want: []int{200}, run: func() (int, []byte, error) {
			n := s.hook.count()
			st, body, err := f.doRaw("PATCH", "/Subscription/"+s.subB, s.tokB, "application/fhir+json", mustMarshal(fpReplace("Subscription.reason", "again")))
			if err != nil || st != 200 {
				return st, body, err
			}
			if !s.hook.waitAuth(n+1, 30*time.Second) {
				return 0, body, fmt.Errorf("no handshake with the stored secret after the PATCH")
			}
			return st, body, nil
		}},
		{name: "A patches B's Subscription", tok: A, method: "PATCH", path: "/Subscription/" + f.subB, ctype: jp,
			body: `[{"op":"replace","path":"/status","value":"off"}]`, want: []int{404}},
	}
}

// notDeleted checks a conditional delete answer says nothing was deleted.
func notDeleted(st int, body []byte) error {
	if st == 200 && !strings.Contains(string(body), "nothing deleted") {
		return fmt.Errorf("the conditional delete deleted something")
	}
	return nil
}

// doHeader sends one request with an extra header.
func (f *moreFixture) doHeader(method, path string, body any, kv ...string) (int, []byte, error) {
	raw, _ := json.Marshal(body)
	return f.doRaw(method, path, f.tokA, "application/fhir+json", raw, kv...)
}

// bundleAttacks: the same through batch and transaction, and bundles
// that are hostile in shape.
func (f *moreFixture) bundleAttacks() []restAttack {
	s, A := f.attackServer, f.tokA
	own := criticalObservation("pat-a", "2823-3", "bundle")
	jpBinary := func(doc string) map[string]any {
		return map[string]any{"resourceType": "Binary", "contentType": "application/json-patch+json",
			"data": base64.StdEncoding.EncodeToString([]byte(doc))}
	}
	cond := func(method, url string, res map[string]any) map[string]any { return entry(method, url, res) }
	ine := entry("POST", "Observation", own)
	ine["request"].(map[string]any)["ifNoneExist"] = "identifier=" + b2Ident
	circular := bundle("transaction",
		map[string]any{"fullUrl": "urn:uuid:11111111-1111-1111-1111-111111111111", "resource": map[string]any{"resourceType": "Observation",
			"status": "final", "code": map[string]any{"text": "c1"}, "subject": ref("Patient/pat-a"),
			"hasMember": []any{ref("urn:uuid:22222222-2222-2222-2222-222222222222")}},
			"request": map[string]any{"method": "POST", "url": "Observation"}},
		map[string]any{"fullUrl": "urn:uuid:22222222-2222-2222-2222-222222222222", "resource": map[string]any{"resourceType": "Observation",
			"status": "final", "code": map[string]any{"text": "c2"}, "subject": ref("Patient/pat-a"),
			"hasMember": []any{ref("urn:uuid:11111111-1111-1111-1111-111111111111")}},
			"request": map[string]any{"method": "POST", "url": "Observation"}})
	selfRef := bundle("transaction",
		map[string]any{"fullUrl": "urn:uuid:33333333-3333-3333-3333-333333333333", "resource": map[string]any{"resourceType": "Observation",
			"status": "final", "code": map[string]any{"text": "self"}, "subject": ref("urn:uuid:33333333-3333-3333-3333-333333333333")},
			"request": map[string]any{"method": "POST", "url": "Observation"}})
	var many []map[string]any
	for i := 0; i < 5000; i++ {
		many = append(many, entry("GET", "Observation/"+s.obsB, nil))
	}
	var manyCreates []map[string]any
	for i := 0; i < 5000; i++ {
		manyCreates = append(manyCreates, entry("POST", "Basic", map[string]any{"resourceType": "Basic", "code": map[string]any{"text": "x"}}))
	}
	return []restAttack{
		{name: "A batch: include, chain, _has and count oracles", tok: A, method: "POST", path: "/", want: []int{200},
			body: bundle("batch",
				entry("GET", "Observation?_id="+f.bridge+"&_include=Observation:has-member&_include=Observation:performer", nil),
				entry("GET", "Observation?performer:Patient._id=pat-b", nil),
				entry("GET", "Patient?_has:Observation:subject:_id="+s.obsB, nil),
				entry("GET", "Observation?patient=pat-b&_summary=count", nil),
				entry("GET", "Observation/"+s.obsB+"?_elements=note", nil)),
			check: wantEntries("200", "200", "200", "200", "404")},
		{name: "A batch: conditional create, update, delete and PATCH of B's", tok: A, method: "POST", path: "/", want: []int{200},
			body: bundle("batch", ine,
				cond("PUT", "Observation?identifier="+b2Ident, criticalObservation("pat-a", "2823-3", "bcu")),
				cond("DELETE", "Observation?identifier="+b2Ident, nil),
				cond("DELETE", "Patient?_id=pat-b", nil),
				cond("PATCH", "Observation/"+f.obsB2, jpBinary(`[{"op":"replace","path":"/status","value":"amended"}]`)),
				cond("PATCH", "Patient/pat-b", jpBinary(`[{"op":"test","path":"/name/0/family","value":"x"}]`))),
			check: func(st int, body []byte) error {
				if err := wantEntries("201", "201", "200", "200", "404", "404")(st, body); err != nil {
					return err
				}
				if strings.Count(string(body), "nothing deleted") != 2 {
					return fmt.Errorf("a conditional delete entry deleted something")
				}
				return nil
			}},
		{name: "A transaction: PATCH of B's Observation", tok: A, method: "POST", path: "/", want: []int{400, 403, 404, 409, 412, 422},
			body: bundle("transaction", cond("PATCH", "Observation/"+f.obsB2, jpBinary(`[{"op":"replace","path":"/status","value":"amended"}]`)))},
		{name: "A transaction: conditional delete of B's", tok: A, method: "POST", path: "/", want: []int{200},
			body: bundle("transaction", cond("DELETE", "Observation?identifier="+b2Ident, nil), cond("DELETE", "Condition?patient=pat-b", nil))},
		{name: "A transaction: conditional update by B's identifier", tok: A, method: "POST", path: "/", want: []int{200},
			body: bundle("transaction", cond("PUT", "Observation?identifier="+b2Ident, criticalObservation("pat-a", "2823-3", "tcu")))},
		{name: "A transaction: ifNoneExist with B's identifier creates", tok: A, method: "POST", path: "/", want: []int{200},
			body: bundle("transaction", ine), check: wantEntries("201")},
		{name: "A transaction: JSON Patch bomb", tok: A, method: "POST", path: "/", want: []int{400, 422},
			body: bundle("transaction", cond("PATCH", "Observation/"+f.bridge, jpBinary(patchBomb(40))))},
		{name: "A transaction with circular urn:uuid references", tok: A, method: "POST", path: "/", body: circular, want: []int{200, 400, 422}},
		{name: "A transaction whose resource references itself", tok: A, method: "POST", path: "/", body: selfRef, want: []int{200, 400, 403, 422}},
		{name: "A batch of 5,000 reads of B's Observation", tok: A, method: "POST", path: "/", body: bundle("batch", many...), want: []int{200, 400, 413, 422}},
		{name: "A transaction of 5,000 creates", tok: f.admin, attacker: true, method: "POST", path: "/", body: bundle("transaction", manyCreates...),
			want: []int{200, 400, 413, 422}},
		{name: "A batch nested in a batch", tok: A, method: "POST", path: "/", want: []int{200, 400},
			body: bundle("batch", entry("POST", "/", bundle("batch", entry("GET", "Observation/"+s.obsB, nil))))},
		{name: "A batch entry reading history", tok: A, method: "POST", path: "/", want: []int{200, 400},
			body: bundle("batch", entry("GET", "Observation/"+s.obsB+"/_history", nil), entry("GET", "_history", nil))},
		{name: "A batch entry with an absolute URL elsewhere", tok: A, method: "POST", path: "/", want: []int{200, 400},
			body: bundle("batch", entry("GET", "http://169.254.169.254/latest/meta-data/", nil), entry("GET", "https://example.org/Observation/"+s.obsB, nil))},
		{name: "A batch entry with If-Match garbage", tok: A, method: "POST", path: "/", want: []int{200, 400},
			body: bundle("batch", map[string]any{"resource": withID(criticalObservation("pat-a", "2823-3", "im"), f.bridge),
				"request": map[string]any{"method": "PUT", "url": "Observation/" + f.bridge, "ifMatch": `W/"abc`}})},
	}
}

// patchBomb is a JSON Patch whose n copies double the document each time.
func patchBomb(n int) string {
	return "[" + strings.TrimSuffix(strings.Repeat(`{"op":"copy","from":"/extension/0","path":"/extension/0/extension/-"},`, n), ",") + "]"
}

// jwtAttacks: tokens the server must refuse, or read as no more than they
// say.
func (f *moreFixture) jwtAttacks() []restAttack {
	now := time.Now().Unix()
	base := func(extra map[string]any) map[string]any {
		c := map[string]any{"sub": "alice", "scope": "patient/*.cruds", "patient": "pat-a", "exp": now + 3600, "iat": now}
		for k, v := range extra {
			if v == nil {
				delete(c, k)
			} else {
				c[k] = v
			}
		}
		return c
	}
	hs := map[string]any{"alg": "HS256", "typ": "JWT"}
	tok := func(h map[string]any, c map[string]any) string { return signJWT(f.secret, h, c) }
	var cs []restAttack
	refuse := func(name, token string) {
		cs = append(cs, restAttack{name: "JWT " + name, tok: token, method: "GET", path: "/Observation/" + f.obsB, want: []int{401}})
	}
	refuse("nbf in the future", tok(hs, base(map[string]any{"nbf": now + 3600})))
	refuse("iat a year ahead", tok(hs, base(map[string]any{"iat": now + 365*86400})))
	refuse("without exp", tok(hs, base(map[string]any{"exp": nil})))
	refuse("exp as a string", tok(hs, base(map[string]any{"exp": fmt.Sprint(now + 3600)})))
	refuse("exp 1e30", tok(hs, base(map[string]any{"exp": 1e30})))
	refuse("exp negative", tok(hs, base(map[string]any{"exp": -1})))
	refuse("alg HS512 header over an HS256 MAC", tok(map[string]any{"alg": "HS512"}, base(nil)))
	refuse("alg RS256 header (key confusion)", tok(map[string]any{"alg": "RS256"}, base(nil)))
	refuse("alg none with a MAC", tok(map[string]any{"alg": "none"}, base(nil)))
	refuse("alg hs256 lower case", tok(map[string]any{"alg": "hs256"}, base(nil)))
	refuse("patient claim a list", tok(hs, base(map[string]any{"patient": []any{"pat-a", "pat-b"}})))
	refuse("patient claim a reference to B", tok(hs, base(map[string]any{"patient": "Patient/pat-b"})))
	refuse("patient claim two ids", tok(hs, base(map[string]any{"patient": "pat-a,pat-b"})))
	refuse("patient claim *", tok(hs, base(map[string]any{"patient": "*"})))
	refuse("patient claim empty", tok(hs, base(map[string]any{"patient": ""})))
	refuse("scope a list", tok(hs, base(map[string]any{"scope": []any{"system/*.cruds"}})))
	refuse("scope with a NUL", tok(hs, base(map[string]any{"scope": "system/*.rs\x00"})))
	refuse("scope with a filter on *", tok(hs, base(map[string]any{"scope": "system/*.rs?patient=pat-b"})))
	refuse("scope with a double slash", tok(hs, base(map[string]any{"scope": "system//*.rs"})))
	refuse("payload a JSON array", base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256"}`))+"."+base64.RawURLEncoding.EncodeToString([]byte(`[1,2]`))+".x")
	refuse("longer than 16 KiB", tok(hs, base(map[string]any{"pad": strings.Repeat("x", 20000)})))
	refuse("four segments", tok(hs, base(nil))+".x")
	refuse("signed with the secret plus one byte", signJWT(f.secret+"!", hs, base(nil)))
	// Accepted, but never more than the patient's compartment.
	hidden := func(name, token string, want ...int) {
		cs = append(cs, restAttack{name: "JWT " + name, tok: token, method: "GET", path: "/Observation/" + f.obsB,
			want: want, attacker: true})
		cs = append(cs, restAttack{name: "JWT " + name + " (search)", tok: token, method: "GET",
			path: "/Observation?patient=pat-b", want: append(want, 200), attacker: true})
	}
	hidden("kid path traversal", tok(map[string]any{"alg": "HS256", "kid": "../../../../dev/null"}, base(nil)), 404)
	hidden("kid SQL", tok(map[string]any{"alg": "HS256", "kid": "x' OR '1'='1"}, base(nil)), 404)
	hidden("jku to loopback", tok(map[string]any{"alg": "HS256", "jku": "http://127.0.0.1:1/jwks"}, base(nil)), 404)
	hidden("patient/*.* (v1 wildcard)", tok(hs, base(map[string]any{"scope": "patient/*.*"})), 404)
	hidden("patient and system scopes with a patient", tok(hs, base(map[string]any{"scope": "patient/*.rs system/*.rs"})), 404)
	hidden("user scope with a patient", tok(hs, base(map[string]any{"scope": "user/*.rs"})), 404)
	hidden("launch/patient without a patient", tok(hs, base(map[string]any{"scope": "launch/patient patient/*.read", "patient": nil})), 403, 404)
	hidden("patient scope without a patient", tok(hs, base(map[string]any{"scope": "patient/*.rs", "patient": nil})), 403, 404)
	hidden("granular scope filtered to A", tok(hs, base(map[string]any{"scope": "system/Observation.rs?subject=Patient/pat-a", "patient": nil})), 403, 404)
	hidden("no sub", tok(hs, base(map[string]any{"sub": nil})), 404)
	hidden("upper-case scope", tok(hs, base(map[string]any{"scope": "SYSTEM/*.CRUDS", "patient": nil})), 401, 403)
	hidden("empty scope", tok(hs, base(map[string]any{"scope": "", "patient": nil})), 401, 403)
	cs = append(cs,
		restAttack{name: "JWT in access_token on REST (no header)", method: "GET", path: "/Observation/" + f.obsB + "?access_token=" + f.tokA,
			want: []int{400, 401, 404}, attacker: true},
		restAttack{name: "JWT in access_token on REST next to another in the header", tok: f.tokA, method: "GET",
			path: "/Observation/" + f.obsB + "?access_token=" + f.tokB, want: []int{400, 401, 404}, attacker: true},
		restAttack{name: "JWT system/*.read (v1) reads", tok: tok(hs, map[string]any{"sub": "sys", "scope": "system/*.read", "exp": now + 3600}),
			method: "GET", path: "/Observation/" + f.obsA, want: []int{200}},
		restAttack{name: "JWT system/*.read (v1) cannot write", tok: tok(hs, map[string]any{"sub": "sys", "scope": "system/*.read", "exp": now + 3600}),
			method: "DELETE", path: "/Observation/" + f.obsB, want: []int{403}},
		restAttack{name: "JWT system/*.rs (v2) cannot conditional-delete", tok: tok(hs, map[string]any{"sub": "sys", "scope": "system/*.rs", "exp": now + 3600}),
			method: "DELETE", path: "/Observation?identifier=" + b2Ident, want: []int{403}},
		restAttack{name: "JWT system/*.rs (v2) cannot PATCH", tok: tok(hs, map[string]any{"sub": "sys", "scope": "system/*.rs", "exp": now + 3600}),
			method: "PATCH", path: "/Observation/" + f.obsB2, ctype: "application/json-patch+json",
			body: `[{"op":"replace","path":"/status","value":"amended"}]`, want: []int{403}},
		restAttack{name: "JWT with a lower-case bearer scheme", run: func() (int, []byte, error) {
			return f.doRaw("GET", "/Observation/"+f.obsB, "", "", nil, "Authorization", "bearer "+f.tokA)
		}, want: []int{401, 404}, attacker: true},
		restAttack{name: "JWT Basic scheme", run: func() (int, []byte, error) {
			return f.doRaw("GET", "/Observation/"+f.obsB, "", "", nil, "Authorization", "Basic YWRtaW46YWRtaW4=")
		}, want: []int{401}, attacker: true},
	)
	return cs
}
