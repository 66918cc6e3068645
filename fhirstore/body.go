package fhirstore

import (
	"bytes"
	"fmt"
	"time"

	fastjson "github.com/segmentio/encoding/json"
)

// InstantLayout is the layout of meta.lastUpdated written by Stamp: a FHIR
// instant in UTC with millisecond precision.
const InstantLayout = "2006-01-02T15:04:05.000Z"

// FormatInstant formats t as a FHIR instant in UTC with millisecond
// precision (InstantLayout).
func FormatInstant(t time.Time) string { return t.UTC().Format(InstantLayout) }

// Now returns the current time in UTC truncated to the millisecond: the
// precision of meta.lastUpdated and Resource.LastUpdated.
func Now() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }

// ResourceType returns body's resourceType. It returns an error wrapping
// ErrInvalid when the field is missing, not a string or not a type name.
func ResourceType(body map[string]any) (string, error) {
	if body == nil {
		return "", fmt.Errorf("%w: body is empty", ErrInvalid)
	}
	raw, ok := body["resourceType"]
	if !ok {
		return "", fmt.Errorf("%w: missing resourceType", ErrInvalid)
	}
	typ, ok := raw.(string)
	if !ok || !ValidType(typ) {
		return "", fmt.Errorf("%w: resourceType %v is not a resource type name", ErrInvalid, raw)
	}
	return typ, nil
}

// Stamp sets body's id, meta.versionId and meta.lastUpdated (formatted
// with FormatInstant). Other meta fields are kept. It returns an error
// wrapping ErrInvalid when meta is present but not an object, or when id
// is not a valid id.
func Stamp(body map[string]any, id, versionID string, lastUpdated time.Time) error {
	if !ValidID(id) {
		return fmt.Errorf("%w: id %q", ErrInvalid, id)
	}
	meta := map[string]any{}
	if raw, ok := body["meta"]; ok && raw != nil {
		m, ok := raw.(map[string]any)
		if !ok {
			return fmt.Errorf("%w: meta is not an object", ErrInvalid)
		}
		meta = m
	}
	meta["versionId"] = versionID
	meta["lastUpdated"] = FormatInstant(lastUpdated)
	body["meta"] = meta
	body["id"] = id
	return nil
}

// Encode returns the canonical JSON of body: resourceType first, then the
// other members in key order (encoding/json's map order), no HTML
// escaping, no insignificant white space and no trailing newline.
// json.Number values are written as given, so decimals keep their precision.
func Encode(body map[string]any) ([]byte, error) {
	typ, hasType := body["resourceType"]
	if !hasType {
		out, err := EncodeJSON(body)
		if err != nil {
			return nil, fmt.Errorf("encode resource: %w", err)
		}
		return out, nil
	}
	rest := make(map[string]any, len(body))
	for k, v := range body {
		if k != "resourceType" {
			rest[k] = v
		}
	}
	head, err := EncodeJSON(typ)
	if err != nil {
		return nil, fmt.Errorf("encode resource: %w", err)
	}
	if len(rest) == 0 {
		out := make([]byte, 0, len(`{"resourceType":}`)+len(head))
		out = append(append(append(out, `{"resourceType":`...), head...), '}')
		return out, nil
	}
	tail, err := EncodeJSON(rest)
	if err != nil {
		return nil, fmt.Errorf("encode resource: %w", err)
	}
	out := make([]byte, 0, len(`{"resourceType":,`)+len(head)+len(tail))
	out = append(append(append(out, `{"resourceType":`...), head...), ',')
	return append(out, tail[1:]...), nil // tail without the '{' that opens rest
}

// EncodeJSON is the server's one compact JSON encoding of a value built of
// maps, slices, strings, json.Number and the like (a resource, a Bundle, an
// OperationOutcome): encoding/json's bytes exactly — map keys in order,
// the same escapes and number formats, the same errors — without HTML
// escaping and without a trailing newline. It runs segmentio/encoding's
// encoder, which writes the same bytes as encoding/json (checked by
// FuzzEncodeJSONAgrees) at under half its CPU and with a few allocations
// instead of one per value: encoding Bundles and resources was 6–7% of the
// server's CPU under fhirsub-load's e2e scenario.
func EncodeJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := fastjson.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// Decode decodes a JSON object the server encoded itself (a stored body,
// a notification) with numbers as json.Number. It rejects trailing data
// after the object. It runs segmentio/encoding's parser, which gives the
// same values as encoding/json (checked by FuzzDecodeAgrees) at about
// half its CPU: decoding stored versions for the matcher, the legacy feed
// and the masking of Subscriptions was 3-9% of the server's CPU. That
// parser has no nesting limit, so bodies from clients are decoded with
// encoding/json (web's decodeObject), whose limit bounds what is stored.
func Decode(data []byte) (map[string]any, error) {
	var body map[string]any
	rest, err := fastjson.Parse(data, &body, fastjson.UseNumber)
	if err != nil {
		return nil, fmt.Errorf("decode resource: %w", err)
	}
	if body == nil {
		return nil, fmt.Errorf("decode resource: %w: not a JSON object", ErrInvalid)
	}
	if len(rest) > 0 {
		return nil, fmt.Errorf("decode resource: %w: data after the object", ErrInvalid)
	}
	return body, nil
}
