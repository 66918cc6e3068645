package subscriptions

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/fhirsub/fhirsub/fhirstore"
)

// redactRaw is Redact on the JSON of a stored Subscription without
// decoding it into maps: only the members Redact looks at are split into
// their parts (the top-level extension list, channel, its header and
// extension lists, an HMAC secret extension), everything else is copied
// as it is. The answer is what redactJSON(raw, Redact) gives: raw itself
// when nothing is hidden, else the same members and values, resourceType
// first and the other members in key order as fhirstore.Encode writes
// them (the same bytes for a body the server encoded; FuzzRedactRawAgrees
// checks both). ok is false for what it leaves to the decoder: invalid
// UTF-8 or JSON, JSON that is not an object, an extension list that is
// neither an array nor null. Every rendering of a Subscription carries
// the creator's access extension, so each was decoded and encoded again:
// 3% of the CPU of creating subscriptions, and a third of the bytes the
// server decoded doing it.
func redactRaw(raw []byte) (out []byte, ok bool) {
	if !utf8.Valid(raw) || !json.Valid(raw) { // the scanner below trusts the syntax
		return nil, false
	}
	top, ok := rawObject(raw)
	if !ok {
		return nil, false
	}
	// The parts Redact looks at are written again from their members
	// whenever anything changes, as the decoder's last-wins reading gives
	// them: a member given twice in raw cannot slip a secret past a reader
	// that takes the first.
	exts, dropped, ok := dropAccess(top.get("extension"))
	if !ok {
		return nil, false
	}
	ch, masked := maskChannel(top.get("channel"))
	if !dropped && !masked {
		return raw, true
	}
	if exts != nil {
		top.set("extension", exts)
	} else {
		top.del("extension")
	}
	if ch != nil {
		top.set("channel", ch)
	}
	return appendObject(make([]byte, 0, len(raw)), top, true), true
}

// dropAccess takes ExtAccess out of a top-level extension list v: the
// list written again (nil when v is absent, or held ExtAccess only) and
// whether any went. A null list is Redact's no list.
func dropAccess(v []byte) (list []byte, dropped, ok bool) {
	items, isArray := rawArray(v)
	if !isArray {
		return v, false, len(v) == 0 || bytes.Equal(v, []byte("null")) // else the decoder's
	}
	left := items[:0:0]
	for _, it := range items {
		m, is := urlIs(it, ExtAccess)
		if is {
			continue
		}
		if m != nil {
			it = appendObject(nil, m, false)
		}
		left = append(left, it)
	}
	dropped = len(left) != len(items)
	if dropped && len(left) == 0 {
		return nil, true, true
	}
	return appendArray(nil, left), dropped, true
}

// maskChannel masks the header values and the HMAC secret of a channel v
// (redactSecrets): the channel written again (v itself when it is no
// object) and whether anything was masked.
func maskChannel(v []byte) (out []byte, masked bool) {
	ch, isObject := rawObject(v)
	if !isObject {
		return v, false // absent or not an object: redactSecrets leaves it
	}
	if lines, isArray := rawArray(ch.get("header")); isArray {
		shown := make([][]byte, len(lines))
		for i, l := range lines {
			line, _ := rawString(l)
			shown[i] = appendString(nil, maskHeader(line))
		}
		ch.set("header", appendArray(nil, shown))
		masked = len(lines) > 0
	}
	if exts, isArray := rawArray(ch.get("extension")); isArray {
		for i, it := range exts {
			m, is := urlIs(it, ExtHMACSecret)
			if is {
				m.set("valueString", appendString(nil, Masked))
				masked = true
			}
			if m != nil {
				exts[i] = appendObject(nil, m, false)
			}
		}
		ch.set("extension", appendArray(nil, exts))
	}
	return appendObject(nil, ch, false), masked
}

// urlIs splits item when it is an object (m is nil otherwise) and
// reports whether its url is the string url.
func urlIs(item []byte, url string) (m object, is bool) {
	m, ok := rawObject(item)
	if !ok {
		return nil, false
	}
	u, _ := rawString(m.get("url"))
	return m, u == url
}

// member is one member of a JSON object: its key unescaped and its value
// as it is.
type member struct {
	key string
	val []byte
}

// object is the members of a JSON object in their order, a key given
// twice included.
type object []member

// get returns the value of the last member named key (the decoder's
// reading of a key given twice), nil when there is none.
func (o object) get(key string) []byte {
	for i := len(o) - 1; i >= 0; i-- {
		if o[i].key == key {
			return o[i].val
		}
	}
	return nil
}

// set gives the last member named key the value v, or adds it.
func (o *object) set(key string, v []byte) {
	for i := len(*o) - 1; i >= 0; i-- {
		if (*o)[i].key == key {
			(*o)[i].val = v
			return
		}
	}
	*o = append(*o, member{key, v})
}

// del removes every member named key.
func (o *object) del(key string) {
	*o = slices.DeleteFunc(*o, func(m member) bool { return m.key == key })
}

// rawObject splits v, a valid JSON value (redactRaw checked the whole),
// into its members when it is an object; ok is false otherwise (nil v
// included).
func rawObject(v []byte) (o object, ok bool) {
	i := skipSpace(v, 0)
	if i >= len(v) || v[i] != '{' {
		return nil, false
	}
	o = object{}
	if i = skipSpace(v, i+1); v[i] == '}' {
		return o, true
	}
	for {
		end := skipValue(v, i)
		key, _ := rawString(v[i:end])
		i = skipSpace(v, skipSpace(v, end)+1) // past the ':'
		end = skipValue(v, i)
		o = append(o, member{key, v[i:end]})
		if i = skipSpace(v, end); v[i] == '}' {
			return o, true
		}
		i = skipSpace(v, i+1) // past the ','
	}
}

// rawArray splits v, a valid JSON value, into its items when it is an
// array; ok is false otherwise (nil v included).
func rawArray(v []byte) (items [][]byte, ok bool) {
	i := skipSpace(v, 0)
	if i >= len(v) || v[i] != '[' {
		return nil, false
	}
	items = [][]byte{}
	if i = skipSpace(v, i+1); v[i] == ']' {
		return items, true
	}
	for {
		end := skipValue(v, i)
		items = append(items, v[i:end])
		if i = skipSpace(v, end); v[i] == ']' {
			return items, true
		}
		i = skipSpace(v, i+1)
	}
}

// rawString returns the string a JSON value holds, unescaped; ok is
// false for any other value.
func rawString(v []byte) (s string, ok bool) {
	v = bytes.TrimSpace(v)
	if len(v) < 2 || v[0] != '"' {
		return "", false
	}
	if bytes.IndexByte(v, '\\') < 0 {
		return string(v[1 : len(v)-1]), true
	}
	if err := json.Unmarshal(v, &s); err != nil {
		return "", false
	}
	return s, true
}

// skipSpace returns the index of the first byte at or after i that is
// not JSON white space.
func skipSpace(v []byte, i int) int {
	for i < len(v) && (v[i] == ' ' || v[i] == '\t' || v[i] == '\n' || v[i] == '\r') {
		i++
	}
	return i
}

// skipValue returns the index just past the valid JSON value that
// starts at i.
func skipValue(v []byte, i int) int {
	switch v[i] {
	case '"':
		for i++; v[i] != '"'; i++ {
			if v[i] == '\\' {
				i++ // the escaped byte, a quote perhaps
			}
		}
		return i + 1
	case '{', '[':
		depth := 0
		for ; ; i++ {
			switch v[i] {
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			case '"':
				i = skipValue(v, i) - 1
			}
		}
	default: // a number, true, false or null
		for i < len(v) && !strings.ContainsRune(",}] \t\n\r", rune(v[i])) {
			i++
		}
		return i
	}
}

// appendObject writes o as fhirstore.Encode writes a map: the last of a
// key given twice, members in key order, resourceType first when first
// is set.
func appendObject(dst []byte, o object, first bool) []byte {
	sorted := slices.Clone(o)
	slices.SortStableFunc(sorted, func(a, b member) int {
		if first && (a.key == "resourceType") != (b.key == "resourceType") {
			if a.key == "resourceType" {
				return -1
			}
			return 1
		}
		return strings.Compare(a.key, b.key)
	})
	dst = append(dst, '{')
	n := 0
	for i, m := range sorted {
		if i+1 < len(sorted) && sorted[i+1].key == m.key {
			continue // the decoder keeps the last
		}
		if n > 0 {
			dst = append(dst, ',')
		}
		n++
		dst = appendString(dst, m.key)
		dst = append(dst, ':')
		dst = append(dst, m.val...)
	}
	return append(dst, '}')
}

// appendArray writes items as a JSON array.
func appendArray(dst []byte, items [][]byte) []byte {
	dst = append(dst, '[')
	for i, it := range items {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, it...)
	}
	return append(dst, ']')
}

// appendString writes s as a JSON string with the encoder's escapes: as
// it is when it needs none (the common case), else through EncodeJSON.
func appendString(dst []byte, s string) []byte {
	plain := true
	for _, r := range s {
		if r < 0x20 || r == '"' || r == '\\' || r == '\u2028' || r == '\u2029' || r == utf8.RuneError {
			plain = false
			break
		}
	}
	if plain {
		dst = append(dst, '"')
		dst = append(dst, s...)
		return append(dst, '"')
	}
	enc, err := fhirstore.EncodeJSON(s)
	if err != nil { // a string always encodes
		return append(dst, `""`...)
	}
	return append(dst, enc...)
}
