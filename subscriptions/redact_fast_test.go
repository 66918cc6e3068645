package subscriptions

import (
	"bytes"
	"testing"

	"github.com/fhirsub/fhirsub/fhirstore"
)

// TestNothingToHideNeverHidesASecret: the shortcut of redactJSON answers
// raw unchanged only where decoding and redacting would change nothing,
// escaped spellings of the secrets' names included; everywhere else
// redactJSON's answer is the redacted body.
func TestNothingToHideNeverHidesASecret(t *testing.T) {
	cases := []struct {
		name     string
		raw      string
		shortcut bool
	}{
		{"plain", `{"resourceType":"Subscription","status":"active","channel":{"type":"rest-hook","endpoint":"https://h.example/x"}}`, true},
		{"header", `{"resourceType":"Subscription","channel":{"type":"rest-hook","header":["Authorization: Bearer s3cret"]}}`, false},
		{"escaped header name", `{"resourceType":"Subscription","channel":{"type":"rest-hook","head\u0065r":["Authorization: Bearer s3cret"]}}`, false},
		{"hmac secret", `{"resourceType":"Subscription","channel":{"extension":[{"url":"` + ExtHMACSecret + `","valueString":"k"}]}}`, false},
		{"escaped hmac url", `{"resourceType":"Subscription","channel":{"extension":[{"url":"https:\/\/fhirsub.org\/StructureDefinition\/subscription-hmac-secret","valueString":"k"}]}}`, false},
		{"access", `{"resourceType":"Subscription","extension":[{"url":"` + ExtAccess + `","valueString":"x"}]}`, false},
		{"the word in a text", `{"resourceType":"Subscription","reason":"send a \"header\" please"}`, false},
		{"not JSON", `{"resourceType":"Subscription",`, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			raw := []byte(tc.raw)
			if got := nothingToHide(raw); got != tc.shortcut {
				t.Fatalf("nothingToHide = %v, want %v", got, tc.shortcut)
			}
			got := redactJSON(raw, Redact)
			want := []byte(`{"resourceType":"Subscription"}`) // what does not decode is withheld
			if body, err := fhirstore.Decode(raw); err == nil {
				if Redact(body) {
					want, _ = fhirstore.Encode(body)
				} else {
					want = raw
				}
			}
			if !bytes.Equal(got, want) {
				t.Errorf("redactJSON = %s, want %s", got, want)
			}
			if bytes.Contains(got, []byte("s3cret")) {
				t.Errorf("redactJSON shows the secret: %s", got)
			}
		})
	}
}
