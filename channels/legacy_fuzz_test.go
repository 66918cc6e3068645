package channels

import (
	"strings"
	"testing"
)

// FuzzParseLegacyRequest checks that no client message crashes the parser
// and that every accepted subscription is well formed.
func FuzzParseLegacyRequest(f *testing.F) {
	for _, seed := range []string{
		`{"type":"ping"}`,
		`{"type":"subscribe","data":{"subscription_id":"sub_123","resource_types":["Observation"],"patient_ids":["patient-123"]}}`,
		`{"type":"subscribe","data":{"subscription_id":"s","resource_types":["*"],"patient_ids":[]}}`,
		`{"type":"subscribe","data":{"subscription_id":"s","resource_types":["*"],"patient_ids":["Patient/1","1"]}}`,
		`{"type":"unsubscribe","data":{"subscription_id":"sub_123"}}`,
		`{"type":"resume","data":{"since":42}}`,
		`{"type":"resume","data":{"since":"42"}}`,
		`{"type":"resume","data":{"since":1e3}}`,
		`{"type":"subscribe","data":{"subscription_id":"s","resource_types":["observation"]}}`,
		`{"type":"subscribe","data":null}`,
		`{"type":7}`,
		`{"type":`,
		`[]`,
		`null`,
		``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, perr := parseLegacyRequest(data, 5)
		if perr != nil {
			if perr.code == "" || perr.message == "" {
				t.Fatalf("error without code or message for %q", data)
			}
			return
		}
		switch req.typ {
		case "ping", "unsubscribe", "resume":
			if req.typ == "unsubscribe" && req.id == "" || req.since < 0 {
				t.Fatalf("accepted %q as %+v", data, req)
			}
		case "subscribe":
			sub := req.sub
			if sub.id == "" || len(sub.id) > 128 || !sub.allTypes && len(sub.types) == 0 || len(sub.patients) > 5 {
				t.Fatalf("accepted %q as %+v", data, sub)
			}
			for _, p := range sub.patients {
				if !isFHIRID(p) || strings.HasPrefix(p, "Patient/") {
					t.Fatalf("accepted patient %q in %q", p, data)
				}
			}
		default:
			t.Fatalf("accepted unknown type %q", req.typ)
		}
	})
}
