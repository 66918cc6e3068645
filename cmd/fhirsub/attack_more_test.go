package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// The second hostile table (TestMoreAttacks): what the REST, notify and
// bad-input tables do not try. Cross-patient reads through the search
// features of issue 15 (_include, _revinclude, :iterate, chains, _has,
// _summary=count and _total as count oracles, _elements), conditional
// create/update/delete and PATCH aimed at another patient's resources,
// the same inside batch and transaction; odd JWTs (future nbf/iat, other
// HMAC algorithms, kid/jku/crit headers, patient claims that are not one
// id, scopes with odd syntax); bad input (JSON Patch bombs, deep JSON,
// If-Match garbage, method overrides, huge and circular transactions);
// rest-hook endpoints that name loopback as a number; websocket frames
// that are binary, huge or not JSON on every socket, and many sockets per
// token. After every attack /healthz answers within 1 s and, at the end,
// B's data is unchanged.

// moreFixture is what the table needs beyond attackServer: A's "bridge"
// Observation that references B's resources, and a resource of B with an
// identifier free of the marker (so conditional URLs echo nothing of B).
type moreFixture struct {
	*attackServer
	secret   string
	bridge   string // A's Observation: hasMember/derivedFrom B's, performer/focus Patient/pat-b
	obsB2    string // B's Observation with identifier urn:more|b2-ident, note markerB
	missing  []byte // A's answer for a missing Observation
	patchMis []byte // A's answer to a PATCH of a missing Observation
}

const b2Ident = "urn:more|b2-ident"

func TestMoreAttacks(t *testing.T) {
	s := newAttackServer(t)
	f := &moreFixture{attackServer: s, secret: strings.Repeat("attack-table-secret!", 3)}
	mk := func(tok string, want int, method, path string, body any) map[string]any {
		t.Helper()
		code, out, err := fhirDoWith(context.Background(), method, s.p.base+path, body, http.Header{"Authorization": {"Bearer " + tok}})
		if err != nil || code != want {
			t.Fatalf("setup %s %s: %d %v (%v), want %d", method, path, code, out, err, want)
		}
		return out
	}
	b2 := criticalObservation("pat-b", "2823-3", "b2")
	b2["identifier"] = []any{map[string]any{"system": "urn:more", "value": "b2-ident"}}
	b2["note"] = []any{map[string]any{"text": markerB + "-b2"}}
	f.obsB2 = mk(s.tokB, 201, "POST", "/Observation", b2)["id"].(string)
	bridge := criticalObservation("pat-a", "2823-3", "bridge")
	bridge["code"] = map[string]any{"text": "bridge"}
	bridge["hasMember"] = []any{ref("Observation/" + s.obsB)}
	bridge["derivedFrom"] = []any{ref("Observation/" + f.obsB2)}
	bridge["performer"] = []any{ref("Patient/pat-b")}
	bridge["focus"] = []any{ref("Patient/pat-b")}
	f.bridge = mk(s.tokA, 201, "POST", "/Observation", bridge)["id"].(string)
	_, f.missing, _ = s.do(restAttack{tok: s.tokA, method: "GET", path: "/Observation/does-not-exist"})
	_, f.patchMis, _ = s.do(restAttack{tok: s.tokA, method: "PATCH", path: "/Observation/does-not-exist",
		body: `[{"op":"replace","path":"/status","value":"amended"}]`, ctype: "application/json-patch+json"})

	s.runTable(t, "more", f.attacks(t), 100)
	code, out, err := fhirDoWith(context.Background(), "GET", s.p.base+"/Observation/"+f.obsB2, nil, http.Header{"Authorization": {"Bearer " + s.tokB}})
	if meta, _ := out["meta"].(map[string]any); err != nil || code != 200 || meta["versionId"] != "1" {
		t.Errorf("B's second Observation after the attacks: %d %v %v, want version 1", code, out["meta"], err)
	}
}

// sameAs checks the answer is byte for byte want (a hidden resource must
// answer as a missing one).
func sameAs(want *[]byte) func(int, []byte) error {
	return func(_ int, body []byte) error {
		if !bytes.Equal(body, *want) {
			return fmt.Errorf("answers %.200s, a missing one %.200s", body, *want)
		}
		return nil
	}
}

// signJWT signs header.claims with HMAC-SHA256 under secret, whatever the
// header claims the algorithm is.
func signJWT(secret string, header, claims any) string {
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	in := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(in))
	return in + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (f *moreFixture) attacks(t *testing.T) []restAttack {
	t.Helper()
	s := f.attackServer
	var cs []restAttack
	cs = append(cs, f.searchAttacks()...)
	cs = append(cs, f.writeAttacks()...)
	cs = append(cs, f.bundleAttacks()...)
	cs = append(cs, f.jwtAttacks()...)
	cs = append(cs, f.badInputAttacks()...)
	cs = append(cs, f.ssrfAttacks()...)
	cs = append(cs, f.socketAttacks(t)...)
	for i := range cs {
		a := &cs[i]
		a.attacker = a.attacker || a.tok != s.tokB && a.tok != s.admin && a.tok != s.pract
	}
	return cs
}
