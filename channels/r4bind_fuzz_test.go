package channels

import (
	"testing"
)

// FuzzR4BindMessage checks that no client message crashes the R4 parser
// and that every accepted bind names a valid id.
func FuzzR4BindMessage(f *testing.F) {
	for _, seed := range []string{
		"bind 123",
		"bind abc-DEF.1\n",
		"  bind 42  ",
		"bind ",
		"bind",
		"bind a b",
		"bind ../../etc",
		"BIND 1",
		"ping 1",
		`{"type":"auth","data":{"token":"eyJ.a.b"}}`,
		`{"type":"auth","data":{}}`,
		`{"type":"auth"`,
		`{"type":7}`,
		"",
		"\x00\xff",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := parseR4Message(data)
		if err != nil {
			if err.Error() == "" {
				t.Fatalf("empty error for %q", data)
			}
			return
		}
		switch req.kind {
		case r4Bind:
			if !isFHIRID(req.id) {
				t.Fatalf("accepted id %q from %q", req.id, data)
			}
		case r4Auth:
			if req.token == "" {
				t.Fatalf("accepted empty token from %q", data)
			}
		default:
			t.Fatalf("accepted %q as kind %d", data, req.kind)
		}
	})
}
