package channels

import (
	"strings"
	"testing"
)

// FuzzBackportMessage checks that no client message crashes the Backport
// parser and that every accepted token is non-empty JWT text.
func FuzzBackportMessage(f *testing.F) {
	for _, seed := range []string{
		"bind-with-token eyJhbGciOiJIUzI1NiJ9.e30.sig",
		"bind-with-token: eyJhbGciOiJIUzI1NiJ9.e30.sig",
		"bind-with-token:eyJ.a.b",
		"bind-with-tokeneyJ.a.b",
		"bind-with-token ",
		"unbind-from-token eyJ.a.b",
		"unbind-from-token: eyJ.a.b",
		`{"type":"bind-with-token","payload":{"token":"eyJ.a.b"}}`,
		`{"type":"unbind-from-token","payload":{"token":"eyJ.a.b"}}`,
		`{"type":"bind-with-token","payload":{"token":"a b"}}`,
		`{"type":"bind-with-token","payload":null}`,
		`{"type":"ping"}`,
		"ping",
		`{"type":`,
		`[]`,
		"",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := parseBackportMessage(data)
		if err != nil {
			if err.Error() == "" {
				t.Fatalf("empty error for %q", data)
			}
			return
		}
		switch req.kind {
		case bpPing:
		case bpBind, bpUnbind:
			if req.token == "" || len(req.token) > maxBindingToken || strings.ContainsAny(req.token, " \t\r\n\"") {
				t.Fatalf("accepted token %q from %q", req.token, data)
			}
		default:
			t.Fatalf("accepted %q as kind %d", data, req.kind)
		}
	})
}

func TestParseBackportMessage(t *testing.T) {
	for _, tc := range []struct {
		in    string
		kind  backportKind
		token string
	}{
		{"bind-with-token abc.def.ghi", bpBind, "abc.def.ghi"},
		{"bind-with-token: abc.def.ghi", bpBind, "abc.def.ghi"},
		{"bind-with-token:\tabc.def.ghi\n", bpBind, "abc.def.ghi"},
		{`{"type":"bind-with-token","payload":{"token":"abc.def.ghi"}}`, bpBind, "abc.def.ghi"},
		{"unbind-from-token abc.def.ghi", bpUnbind, "abc.def.ghi"},
		{`{"type":"unbind-from-token","payload":{"token":"abc.def.ghi"}}`, bpUnbind, "abc.def.ghi"},
		{`{"type":"ping"}`, bpPing, ""},
	} {
		req, err := parseBackportMessage([]byte(tc.in))
		if err != nil || req.kind != tc.kind || req.token != tc.token {
			t.Errorf("%q: got %+v, %v", tc.in, req, err)
		}
	}
	for _, bad := range []string{"bind-with-token", "bind-with-tokenabc", "bind abc", `{"type":"bind-with-token"}`, `{"type":"bind"}`, "bind-with-token a\"b"} {
		if req, err := parseBackportMessage([]byte(bad)); err == nil {
			t.Errorf("%q accepted as %+v", bad, req)
		}
	}
}

func TestParseR4Message(t *testing.T) {
	for in, id := range map[string]string{"bind 123": "123", "bind a-b.C\r\n": "a-b.C", " bind 9 ": "9"} {
		req, err := parseR4Message([]byte(in))
		if err != nil || req.kind != r4Bind || req.id != id {
			t.Errorf("%q: got %+v, %v", in, req, err)
		}
	}
	req, err := parseR4Message([]byte(`{"type":"auth","data":{"token":"t.k.n"}}`))
	if err != nil || req.kind != r4Auth || req.token != "t.k.n" {
		t.Errorf("auth: got %+v, %v", req, err)
	}
	for _, bad := range []string{"bind", "bind ", "bind a/b", "bind " + strings.Repeat("x", 65), "hello", `{"type":"auth","data":{}}`} {
		if req, err := parseR4Message([]byte(bad)); err == nil {
			t.Errorf("%q accepted as %+v", bad, req)
		}
	}
}
