package subscriptions

import (
	"encoding/json"
	"reflect"
	"testing"
)

// TestEncodeBundleOneEncoding pins the one encoding every channel uses:
// compact, no trailing newline, <, > and & as they are, and the bytes
// decode back to the same Bundle.
func TestEncodeBundleOneEncoding(t *testing.T) {
	bundle := map[string]any{"resourceType": "Bundle", "id": "b1",
		"entry": []any{map[string]any{"resource": map[string]any{"resourceType": "Observation",
			"note": []any{map[string]any{"text": "a<b & c>d"}}}}}}
	got, err := EncodeBundle(bundle)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"entry":[{"resource":{"note":[{"text":"a<b & c>d"}],"resourceType":"Observation"}}],"id":"b1","resourceType":"Bundle"}`
	t.Logf("encoded: %s", got)
	if string(got) != want {
		t.Fatalf("EncodeBundle = %s, want %s", got, want)
	}
	var back map[string]any
	if err := json.Unmarshal(got, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(normalize(t, bundle), back) {
		t.Fatalf("round trip differs: %v", back)
	}
}

func normalize(t *testing.T, v any) map[string]any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}
