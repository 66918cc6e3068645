package fhirstore_test

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"

	"github.com/fhirsub/fhirsub/fhirstore"
)

// stdEncode is the reference EncodeJSON must agree with: encoding/json
// without HTML escaping and without the trailing newline.
func stdEncode(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func checkAgrees(t *testing.T, v any) {
	t.Helper()
	want, wantErr := stdEncode(v)
	got, err := fhirstore.EncodeJSON(v)
	if (err == nil) != (wantErr == nil) || !bytes.Equal(got, want) {
		t.Fatalf("EncodeJSON(%#v) = %q, %v; encoding/json gives %q, %v", v, got, err, want, wantErr)
	}
}

func TestEncodeJSONAgreesOnEdges(t *testing.T) {
	for _, v := range []any{
		"a\x00b\x1f\u2028\u2029<>&\"\\\t\n\r\x7f", "\xff\xfe invalid UTF-8", "é☃😀",
		1e21, 1e20, 0.000001, 1e-7, math.Copysign(0, -1), 123456789.123, float64(math.MaxInt64), 3.0,
		json.Number("12.50"), json.Number("-0"), json.Number("1e400"),
		json.Number("abc"), math.Inf(1), // errors, on both
		nil, true, []any{}, map[string]any{}, []byte("bytes"), int64(5), float32(0.1),
		map[string]any{"b": 1, "a": []any{nil, "x"}, "\u2028k": 2, "Z": 3, "é": 4},
		[]map[string]any{{"x": 1}}, map[string]string{"b": "1", "a": "2"},
		struct {
			A string `json:"a,omitempty"`
			B *int   `json:"b"`
		}{},
	} {
		checkAgrees(t, v)
	}
}

// FuzzEncodeJSONAgrees checks that EncodeJSON writes encoding/json's bytes
// for every JSON value encoding/json decodes (numbers as json.Number, as
// stored resources are decoded), and that Encode puts resourceType first
// and keeps the rest.
func FuzzEncodeJSONAgrees(f *testing.F) {
	for _, s := range []string{
		`{"resourceType":"Observation","id":"a","valueQuantity":{"value":72.50,"unit":"<b>&"},"note":[{"text":"\u2028\ud83d\ude00"}]}`,
		`[1, 2.5e10, -0, 1E400, "x", null, true, {"": {}}]`,
		`{"resourceType":"Patient"}`, `"\u0000\u001f\\"`, `{"b":1,"a":2,"B":3,"é":4,"e":5}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		var v any
		if dec.Decode(&v) != nil {
			return
		}
		checkAgrees(t, v)
		body, ok := v.(map[string]any)
		if !ok {
			return
		}
		got, err := fhirstore.Encode(body)
		if err != nil {
			t.Fatalf("Encode(%s): %v", data, err)
		}
		back, err := fhirstore.Decode(got)
		if err != nil {
			t.Fatalf("Encode(%s) = %s, not decodable: %v", data, got, err)
		}
		want, _ := stdEncode(body)
		again, _ := stdEncode(back)
		if !bytes.Equal(want, again) {
			t.Fatalf("Encode(%s) = %s changed the resource", data, got)
		}
		if typ, ok := body["resourceType"]; ok {
			head, _ := stdEncode(typ)
			if !bytes.HasPrefix(got, append([]byte(`{"resourceType":`), head...)) {
				t.Fatalf("Encode(%s) = %s: resourceType is not first", data, got)
			}
		}
	})
}
