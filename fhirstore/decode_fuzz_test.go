package fhirstore_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"unicode/utf8"

	"github.com/fhirsub/fhirsub/fhirstore"
)

// stdDecode is the reference Decode must agree with: encoding/json with
// numbers as json.Number, one object, nothing after it.
func stdDecode(data []byte) (map[string]any, bool) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var body map[string]any
	if err := dec.Decode(&body); err != nil || body == nil {
		return nil, false
	}
	if len(bytes.TrimLeft(data[dec.InputOffset():], " \t\r\n")) > 0 {
		return nil, false // anything but spaces after the object
	}
	return body, true
}

func checkDecodeAgrees(t *testing.T, data []byte) {
	t.Helper()
	if !utf8.Valid(data) {
		return // Decode reads what the server encoded: valid UTF-8
	}
	want, ok := stdDecode(data)
	got, err := fhirstore.Decode(data)
	if ok != (err == nil) || ok && !reflect.DeepEqual(got, want) {
		t.Fatalf("Decode(%q) = %#v, %v; encoding/json gives %#v (ok %v)", data, got, err, want, ok)
	}
}

var decodeSeeds = []string{
	`{"resourceType":"Patient","id":"1","name":[{"family":"Ng","given":["A","B"]}],"active":true,"deceasedBoolean":false}`,
	`{"a":1.50,"b":-0,"c":1e400,"d":123456789012345678901234567890,"e":null,"f":[],"g":{}}`,
	`{"s":"\u00e9\u2028\ud83d\ude00\"\\\/\b\f\n\r\t","k":"x","k":"dup"}`,
	` {"a":1} `, `{"a":1}{"b":2}`, `{"a":1} x`, `{"a":1}]`, `{"a":1},`, `null`, `[]`, `1`, ``, `{`, `{"a":}`,
	`{"a":"\ud800"}`, `{"a":01}`, `{"a":1.}`, `{"a":.5}`, `{"a":tru}`, `{"a" 1}`,
}

func TestDecodeAgreesOnEdges(t *testing.T) {
	for _, s := range decodeSeeds {
		checkDecodeAgrees(t, []byte(s))
	}
}

// FuzzDecodeAgrees checks that Decode accepts what encoding/json accepts
// and gives the same values, and refuses what it refuses.
func FuzzDecodeAgrees(f *testing.F) {
	for _, s := range decodeSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkDecodeAgrees(t, data) })
}
