package search

import (
	"net/url"
	"slices"
	"strings"
)

// canonical encodes parameters as a Query keeps them (raw): sorted by
// name, each value in the order given, as url.Values.Encode does, but
// escaping only what url.ParseQuery would not read back as written. A
// reference (Patient/123), a token (http://loinc.org|1234-5) or a URI
// then reads as it was given, and the strings a Query's clauses keep can
// be read back from raw itself (Parse), so that a subscription holds its
// parameters once.
func canonical(v url.Values) string {
	if len(v) == 0 {
		return ""
	}
	names := make([]string, 0, len(v))
	for name := range v {
		names = append(names, name)
	}
	slices.Sort(names)
	var b strings.Builder
	for _, name := range names {
		key := escapeCanonical(name)
		for _, val := range v[name] {
			if b.Len() > 0 {
				b.WriteByte('&')
			}
			b.WriteString(key)
			b.WriteByte('=')
			b.WriteString(escapeCanonical(val))
		}
	}
	return b.String()
}

// keptInQuery reports whether a byte stays as it is in a canonical query
// string: the unreserved characters of RFC 3986 and the sub-delimiters a
// query may hold that url.ParseQuery reads as themselves. '&', '=' and ';'
// separate, '+' reads as a space, '%' escapes and '#' ends the query:
// those, and everything else, are percent-encoded.
func keptInQuery(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '-', '.', '_', '~', '/', ':', '|', ',', '@', '!', '$', '\'', '(', ')', '*':
		return true
	}
	return false
}

// escapeCanonical percent-encodes the bytes of s that keptInQuery does
// not keep.
func escapeCanonical(s string) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if !keptInQuery(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s) + 2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if keptInQuery(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}
