package subscriptions

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/fhirsub/fhirsub/conformance/schema"
)

// TestGoldenNotificationsMatchR4Schema validates every golden notification
// (testdata/*.golden.json, written by TestNotificationGolden -update from
// this package's own output) against the HL7 R4 JSON schema that
// conformance/schema embeds, so that a golden file cannot merely agree
// with the code that wrote it: a Bundle and the resources inside it
// (the subscription-status Parameters, the focus resources) must be valid
// R4.
func TestGoldenNotificationsMatchR4Schema(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	var valid int
	var problems []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		var res map[string]any
		if err := dec.Decode(&res); err != nil {
			problems = append(problems, f+": not JSON: "+err.Error())
			continue
		}
		if err := schema.Validate(res); err != nil {
			problems = append(problems, f+": "+err.Error())
			continue
		}
		valid++
	}
	t.Logf("golden notifications: %d of %d files valid against the R4 JSON schema", valid, len(files))
	for _, p := range problems {
		t.Errorf("invalid R4: %s", p)
	}
	if len(files) < 9 {
		t.Errorf("found %d golden files in testdata, want at least 9 (handshake, heartbeat, events, $status, $events)", len(files))
	}
}
