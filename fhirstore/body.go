package fhirstore

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
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
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	typ, hasType := body["resourceType"]
	if !hasType {
		if err := enc.Encode(body); err != nil {
			return nil, fmt.Errorf("encode resource: %w", err)
		}
		return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
	}
	rest := make(map[string]any, len(body))
	for k, v := range body {
		if k != "resourceType" {
			rest[k] = v
		}
	}
	buf.WriteString(`{"resourceType":`)
	if err := enc.Encode(typ); err != nil {
		return nil, fmt.Errorf("encode resource: %w", err)
	}
	buf.Truncate(buf.Len() - 1) // the encoder's newline
	if len(rest) == 0 {
		buf.WriteByte('}')
		return buf.Bytes(), nil
	}
	mark := buf.Len()
	if err := enc.Encode(rest); err != nil {
		return nil, fmt.Errorf("encode resource: %w", err)
	}
	out := buf.Bytes()
	out[mark] = ',' // replace the '{' that opens rest
	return bytes.TrimSuffix(out, []byte("\n")), nil
}

// Decode decodes a stored JSON object with numbers as json.Number. It
// rejects trailing data after the object.
func Decode(data []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var body map[string]any
	if err := dec.Decode(&body); err != nil {
		return nil, fmt.Errorf("decode resource: %w", err)
	}
	if body == nil {
		return nil, fmt.Errorf("decode resource: %w: not a JSON object", ErrInvalid)
	}
	if dec.More() {
		return nil, fmt.Errorf("decode resource: %w: data after the object", ErrInvalid)
	}
	return body, nil
}
