package subscriptions

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/fhirsub/fhirsub/fhirstore"
)

// Masked replaces a secret in every rendering of a Subscription: the value
// of each channel.header line ("Authorization: Bearer x" is shown as
// "Authorization: ***") and the valueString of ExtHMACSecret. An update
// that sends a masked value back keeps the stored secret.
const Masked = "***"

// redactSecrets masks the secrets of a decoded Subscription body in place
// (channel.header values, the HMAC secret) and reports whether it changed
// anything.
func redactSecrets(body map[string]any) bool {
	ch, _ := body["channel"].(map[string]any)
	if ch == nil {
		return false
	}
	changed := false
	if headers, ok := ch["header"].([]any); ok {
		masked := make([]any, len(headers))
		for i, h := range headers {
			line, _ := h.(string)
			masked[i] = maskHeader(line)
		}
		ch["header"] = masked
		changed = len(headers) > 0
	}
	exts, _ := ch["extension"].([]any)
	for i, raw := range exts {
		if ext, _ := raw.(map[string]any); ext != nil && ext["url"] == ExtHMACSecret {
			masked := make(map[string]any, len(ext))
			for k, v := range ext {
				masked[k] = v
			}
			masked["valueString"] = Masked
			exts[i] = masked
			changed = true
		}
	}
	return changed
}

// maskHeader is how a channel.header line is shown: its name, its value
// Masked (a header that is no string is read as "").
func maskHeader(line string) string {
	name, _, _ := strings.Cut(line, ":")
	return strings.TrimSpace(name) + ": " + Masked
}

// Redact makes a decoded Subscription body fit to show to a client, in
// place: the secrets masked (Masked) and ExtAccess (the creator's identity
// and scopes) removed. It reports whether it changed anything. Decide
// access before: a Subscription's compartment comes from ExtAccess.
func Redact(body map[string]any) bool {
	changed := redactSecrets(body)
	exts, _ := body["extension"].([]any)
	kept := exts[:0:0]
	for _, e := range exts {
		if m, _ := e.(map[string]any); m != nil && m["url"] == ExtAccess {
			changed = true
			continue
		}
		kept = append(kept, e)
	}
	if len(kept) != len(exts) {
		if len(kept) == 0 {
			delete(body, "extension")
		} else {
			body["extension"] = kept
		}
	}
	return changed
}

// redactJSON applies f to a stored Subscription's JSON and returns the new
// JSON, or raw itself when there is nothing to hide. JSON that does not
// decode is withheld entirely rather than shown.
func redactJSON(raw []byte, f func(map[string]any) bool) []byte {
	if nothingToHide(raw) {
		return raw
	}
	body, err := fhirstore.Decode(raw)
	if err != nil {
		return []byte(`{"resourceType":"Subscription"}`)
	}
	if !f(body) {
		return raw
	}
	out, err := fhirstore.Encode(body)
	if err != nil {
		return []byte(`{"resourceType":"Subscription"}`)
	}
	return out
}

// nothingToHide reports, without decoding, that raw is valid JSON in
// which neither Redact nor redactSecrets finds anything to change: no
// "header" member, and neither ExtHMACSecret nor ExtAccess anywhere. JSON
// with any escape (a backslash) is decoded instead: an escape could spell
// one of those names without its bytes. A false alarm (the words in a
// text) only costs the decode. Most Subscriptions rendered without
// authentication carry none of them, and decoding them was 3% of the CPU
// of creating them.
func nothingToHide(raw []byte) bool {
	return bytes.IndexByte(raw, '\\') < 0 &&
		!bytes.Contains(raw, []byte(`"header"`)) &&
		!bytes.Contains(raw, []byte(ExtHMACSecret)) &&
		!bytes.Contains(raw, []byte(ExtAccess)) &&
		json.Valid(raw)
}

// Redact returns the JSON of a stored Subscription as clients may see it
// (Redact on the decoded body). The REST API calls it on every rendering
// of a Subscription (read, vread, search, history, batch, transaction),
// the legacy channel on every Subscription change it sends.
func (h *SubscriptionHook) Redact(raw []byte) []byte { return redactStored(raw) }

// redactStored is redactJSON(raw, Redact), without decoding raw when
// redactRaw can.
func redactStored(raw []byte) []byte {
	if nothingToHide(raw) {
		return raw
	}
	if out, ok := redactRaw(raw); ok {
		return out
	}
	return redactJSON(raw, Redact)
}

// shownCopy is what a notification may carry of a decoded version: body
// itself, or for a Subscription a redacted copy decoded from raw, so that
// body stays whole for the access decisions made on it.
func shownCopy(typ string, raw []byte, body map[string]any) map[string]any {
	if typ != "Subscription" {
		return body
	}
	c, err := fhirstore.Decode(raw)
	if err != nil {
		return map[string]any{"resourceType": "Subscription"}
	}
	Redact(c)
	return c
}

// restoreSecrets puts the stored secrets back where a submitted update
// carries Masked: a header "Name: ***" takes the value of the stored
// header of that name (the n-th of that name for the n-th masked one), the
// HMAC secret extension with Masked takes the stored secret. A masked
// value with nothing stored to restore is refused (422).
func restoreSecrets(body map[string]any, current *fhirstore.Resource) error {
	ch, _ := body["channel"].(map[string]any)
	if ch == nil {
		return nil
	}
	var stored map[string]any
	load := func() (map[string]any, error) {
		if stored != nil || current == nil {
			return stored, nil
		}
		b, err := fhirstore.Decode(current.Body)
		if err != nil {
			return nil, fmt.Errorf("decode Subscription/%s: %w", current.ID, err)
		}
		stored, _ = b["channel"].(map[string]any)
		if stored == nil {
			stored = map[string]any{}
		}
		return stored, nil
	}
	headers, _ := ch["header"].([]any)
	seen := map[string]int{}
	for i, h := range headers {
		line, _ := h.(string)
		name, value, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(value) != Masked {
			continue
		}
		key := strings.ToLower(strings.TrimSpace(name))
		nth := seen[key]
		seen[key]++
		st, err := load()
		if err != nil {
			return err
		}
		old, found := storedHeader(st, key, nth)
		if !found {
			return &Error{Status: http.StatusUnprocessableEntity, Code: "invalid", Element: fmt.Sprintf("Subscription.channel.header[%d]", i),
				Message: fmt.Sprintf("header %s carries the masked value %s but no stored value to keep: send the real value", strings.TrimSpace(name), Masked)}
		}
		headers[i] = old
	}
	exts, _ := ch["extension"].([]any)
	for i, raw := range exts {
		ext, _ := raw.(map[string]any)
		if ext == nil || ext["url"] != ExtHMACSecret || ext["valueString"] != Masked {
			continue
		}
		st, err := load()
		if err != nil {
			return err
		}
		secret := storedSecret(st)
		if secret == "" {
			return &Error{Status: http.StatusUnprocessableEntity, Code: "invalid", Element: fmt.Sprintf("Subscription.channel.extension[%d]", i),
				Message: fmt.Sprintf("the HMAC secret carries the masked value %s but no secret is stored: send the real secret", Masked)}
		}
		ext["valueString"] = secret
	}
	return nil
}

// storedHeader returns the nth stored header line named key (lower case).
func storedHeader(ch map[string]any, key string, nth int) (string, bool) {
	headers, _ := ch["header"].([]any)
	for _, h := range headers {
		line, _ := h.(string)
		name, _, _ := strings.Cut(line, ":")
		if strings.ToLower(strings.TrimSpace(name)) != key {
			continue
		}
		if nth == 0 {
			return line, true
		}
		nth--
	}
	return "", false
}

// storedSecret returns the stored HMAC secret ("" for none).
func storedSecret(ch map[string]any) string {
	exts, _ := ch["extension"].([]any)
	for _, raw := range exts {
		if ext, _ := raw.(map[string]any); ext != nil && ext["url"] == ExtHMACSecret {
			s, _ := ext["valueString"].(string)
			return s
		}
	}
	return ""
}
