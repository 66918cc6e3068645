package subscriptions

import (
	"bytes"
	"encoding/json"
	"reflect"
	"slices"
	"testing"

	"github.com/fhirsub/fhirsub/fhirstore"
)

// storedSubscription is a Subscription as the server stores it: its
// creator's access, channel headers and an HMAC secret, canonical JSON.
func storedSubscription(t testing.TB) []byte {
	t.Helper()
	raw, err := fhirstore.Encode(map[string]any{
		"resourceType": "Subscription", "id": "s1", "status": "active", "reason": "r",
		"meta":      map[string]any{"versionId": "2", "lastUpdated": "2026-12-07T01:00:00.000Z"},
		"extension": []any{map[string]any{"url": "http://example.org/other", "valueString": "kept"}, map[string]any{"url": ExtAccess, "valueString": `{"sub":"owner-token","scope":"user/*.read"}`}},
		"criteria":  "https://fhirsub.org/SubscriptionTopic/result-available",
		"channel": map[string]any{"type": "rest-hook", "endpoint": "https://hooks.example.org/x",
			"header":    []any{"Authorization: Bearer SECRET-TOKEN", "X-Extra: one, two", "no colon", 7},
			"extension": []any{map[string]any{"url": ExtHMACSecret, "valueString": "HMAC-SECRET"}, map[string]any{"url": "http://example.org/x", "valueInteger": 3}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestRedactRawStored: a stored Subscription comes out of redactRaw with
// the same bytes as decoded, redacted and encoded again, and no secret.
func TestRedactRawStored(t *testing.T) {
	raw := storedSubscription(t)
	fast, ok := redactRaw(raw)
	if !ok {
		t.Fatal("redactRaw left a stored Subscription to the decoder")
	}
	if slow := redactJSON(raw, Redact); !bytes.Equal(fast, slow) {
		t.Fatalf("redactRaw:\n%s\nredactJSON:\n%s", fast, slow)
	}
	for _, secret := range []string{"SECRET-TOKEN", "one, two", "HMAC-SECRET", "owner-token", ExtAccess} {
		if bytes.Contains(fast, []byte(secret)) {
			t.Errorf("%q shown: %s", secret, fast)
		}
	}
	for _, kept := range []string{`"valueString":"kept"`, `"Authorization: ***"`, `"no colon: ***"`, `": ***"`, `"valueInteger":3`} {
		if !bytes.Contains(fast, []byte(kept)) {
			t.Errorf("%s missing: %s", kept, fast)
		}
	}
}

// TestRedactRawEscapes: escapes that spell what Redact looks for are
// read as the decoder reads them.
func TestRedactRawEscapes(t *testing.T) {
	raw := []byte(`{"resourceType":"Subscription","extension":[{"url":"\u0068` + ExtAccess[1:] + `","valueString":"{\"sub\":\"x\"}"}],"channel":{"he\u0061der":["Auth\u003a secret"]}}`)
	fast, ok := redactRaw(raw)
	if !ok {
		t.Fatal("redactRaw left escapes to the decoder")
	}
	if want := `{"resourceType":"Subscription","channel":{"header":["Auth: ***"]}}`; string(fast) != want {
		t.Errorf("redactRaw gave %s, want %s", fast, want)
	}
}

// FuzzRedactRawAgrees: whenever redactRaw answers, its JSON decodes to
// what redactJSON(raw, Redact) gives, and for JSON the server encoded it
// is the same bytes.
func FuzzRedactRawAgrees(f *testing.F) {
	f.Add(storedSubscription(f))
	for _, s := range []string{
		`{"resourceType":"Subscription","extension":[{"url":"` + ExtAccess + `","valueString":"x"}]}`,
		`{"extension":[{"url":"` + ExtAccess + `"},{"url":"` + ExtAccess + `"}],"resourceType":"Subscription"}`,
		`{"resourceType":"Subscription","extension":null,"channel":null}`,
		`{"resourceType":"Subscription","extension":{"url":"` + ExtAccess + `"}}`,
		`{"resourceType":"Subscription","extension":[1,"a",null,[],{"url":1}],"channel":[]}`,
		`{"channel":{"header":[],"extension":[{"url":"` + ExtHMACSecret + `"}]}}`,
		`{"channel":{"header":"Authorization: x","extension":{"url":"` + ExtHMACSecret + `"}}}`,
		`{"channel":{"header":[null,true,"A:b:c"," B : c "],"extension":[null]},"channel":{"header":["Z: z"]}}`,
		` { "resourceType" : "Subscription" , "channel" : { "header" : [ "A: b" ] } } `,
		`{"resourceType":"Subscription","channel":{"header":["A: b"]}} trailing`,
		`{"resourceType":"Subscription","channel":{"header":["A\u2028: b"]}}`,
		"{\"resourceType\":\"Subscription\",\"channel\":{\"header\":[\"A\u2028B: b\"]}}",
		`{"resourceType":null,"channel":{"extension":[{"url":"` + ExtHMACSecret + `","valueString":{"deep":[1,2]}}]}}`,
		`null`, `[]`, `{}`, `{"extension":[]}`,
		// escapes spelling what Redact looks for
		`{"resourceType":"Subscription","extension":[{"url":"\u0068` + ExtAccess[1:] + `","valueString":"{\"sub\":\"x\"}"}],"channel":{"he\u0061der":["Auth\u003a secret"]}}`,
		`{"resourceType":"Subscription","channel":{"header":["A: \"q\""],"extension":[{"url":"` + ExtHMACSecret + `","valueString":"s\\t"}]}}`,
		// members given twice: the decoder takes the last
		`{"resourceType":"Subscription","extension":[{"url":"` + ExtAccess + `","url":"x"}],"channel":{"header":["A: secret"],"header":[]}}`,
		`{"resourceType":"Subscription","extension":[{"url":"` + ExtAccess + `"}],"channel":{"extension":[{"url":"` + ExtHMACSecret + `","valueString":"s","url":"y"}]}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		fast, ok := redactRaw(raw)
		if !ok {
			return
		}
		slow := redactJSON(raw, Redact)
		fb, ferr := fhirstore.Decode(fast)
		sb, serr := fhirstore.Decode(slow)
		if (ferr != nil) != (serr != nil) || !reflect.DeepEqual(fb, sb) {
			t.Fatalf("input %q\nredactRaw  %s (%v)\nredactJSON %s (%v)", raw, fast, ferr, slow, serr)
		}
		if body, err := fhirstore.Decode(raw); err == nil {
			if enc, err := fhirstore.Encode(body); err == nil && bytes.Equal(enc, raw) && !bytes.Equal(fast, slow) {
				t.Fatalf("canonical input %s\nredactRaw  %s\nredactJSON %s", raw, fast, slow)
			}
		}
		if !bytes.Equal(fast, raw) {
			if dup := duplicateInspected(t, fast); dup != "" {
				t.Fatalf("input %q\nredactRaw %s gives %s twice", raw, fast, dup)
			}
		}
	})
}

// duplicateInspected returns a member given twice in an object Redact
// looks at (the resource, channel, an extension of either), or "": a
// reader that takes the first of two could see what the decoder, which
// takes the last, redacted.
func duplicateInspected(t *testing.T, raw []byte) string {
	dec := json.NewDecoder(bytes.NewReader(raw))
	var walk func(path string) string
	walk = func(path string) string {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("redactRaw wrote invalid JSON %s: %v", raw, err)
		}
		switch tok {
		case json.Delim('{'):
			seen := map[string]bool{}
			found := ""
			for dec.More() {
				k, _ := dec.Token()
				key, _ := k.(string)
				if seen[key] && found == "" && slices.Contains([]string{"", ".channel", ".channel.extension[]", ".extension[]"}, path) {
					found = path + "." + key
				}
				seen[key] = true
				if d := walk(path + "." + key); found == "" {
					found = d
				}
			}
			_, _ = dec.Token()
			return found
		case json.Delim('['):
			found := ""
			for dec.More() {
				if d := walk(path + "[]"); found == "" {
					found = d
				}
			}
			_, _ = dec.Token()
			return found
		}
		return ""
	}
	return walk("")
}
