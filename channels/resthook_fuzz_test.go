package channels

import (
	"strings"
	"testing"
)

// FuzzRestHookInputs feeds arbitrary endpoints, header lines and allow
// patterns to the rest-hook parsers: none may panic, and whatever they
// accept must be safe to send.
func FuzzRestHookInputs(f *testing.F) {
	for _, s := range []string{
		"https://hooks.example.org/notify", "http://127.0.0.1:8080/x?y=z", "http://[::1]:9/", "ftp://x/",
		"http://user:pw@x/", "http://x/#f", "http://x:99999/", "Authorization: Bearer a:b", "X-A: b\r\nX-B: c",
		"Bad Name: x", ": v", "10.0.0.0/8", "[::1]:*", "localhost:80", "a..b", "\x00", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if u, err := parseEndpoint(s); err == nil {
			if u.Scheme != "http" && u.Scheme != "https" || u.Hostname() == "" || u.User != nil || u.Fragment != "" {
				t.Fatalf("parseEndpoint(%q) accepted %#v", s, u)
			}
		}
		if name, value, err := splitHeader(s); err == nil {
			if !validToken(name) || strings.ContainsAny(value, "\r\n\x00") || strings.ContainsAny(name, "\r\n:") {
				t.Fatalf("splitHeader(%q) accepted %q: %q", s, name, value)
			}
		}
		if r, err := parseAllow(s); err == nil && !r.prefix.IsValid() && r.host == "" {
			t.Fatalf("parseAllow(%q) gave an empty rule", s)
		}
	})
}
