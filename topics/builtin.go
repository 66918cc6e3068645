package topics

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"sync"
)

// BuiltInBase is the canonical URL base of the built-in topics.
const BuiltInBase = "https://fhirsub.org/SubscriptionTopic/"

// EventTypeExtension is the extension, on a SubscriptionTopic (or on the
// Basic wrapping one), whose valueCode is the topic's short event type
// (Topic.EventType), used by the legacy browser channel.
const EventTypeExtension = "https://fhirsub.org/StructureDefinition/topic-event-type"

//go:embed builtin/*.json
var builtinFS embed.FS

var builtinTopics = sync.OnceValue(func() []*Topic {
	var out []*Topic
	for _, res := range BuiltInResources() {
		t, err := Parse(res)
		if err != nil {
			// The files are embedded and covered by tests: a failure is a
			// build defect, not bad input.
			panic(fmt.Sprintf("topics: built-in topic %v: %v", res["id"], err))
		}
		out = append(out, t)
	}
	slices.SortFunc(out, byURL)
	return out
})

// BuiltIn returns the parsed built-in clinical topics, sorted by URL. The
// topics are shared and must not be modified. Their canonical URLs are
// BuiltInBase + name:
//
//   - critical-result: an Observation created or updated with a critical
//     interpretation (v3-ObservationInterpretation, or v2-0078, AA, HH or
//     LL) and status preliminary, final, amended or corrected, whose
//     previous version was not such a critical result. Re-saving or
//     amending a result that is already critical does not fire again.
//   - new-order: a ServiceRequest or MedicationRequest created with status
//     draft or active (queryCriteria).
//   - result-available: a DiagnosticReport or Observation created in, or
//     moved to, final, amended or corrected (appended too for a report) from
//     any other status (queryCriteria). Amending a released result does not
//     fire again.
//   - order-status-change: a ServiceRequest or MedicationRequest updated
//     with a different status.
//   - task: a Task created, or updated with a new status or owner.
//   - communication: a Communication created.
//
// Each lets subscriptions filter by patient and subject, plus the useful
// parameters of its types (code, category, status, performer, owner,
// recipient...), and its notificationShape includes the patient.
func BuiltIn() []*Topic { return slices.Clone(builtinTopics()) }

// BuiltInResources returns the SubscriptionTopic JSON of the built-in
// topics, freshly decoded (numbers as json.Number) on every call, sorted by
// file name.
func BuiltInResources() []map[string]any {
	names, err := fs.Glob(builtinFS, "builtin/*.json")
	if err != nil {
		panic(fmt.Sprintf("topics: built-in topics: %v", err))
	}
	slices.Sort(names)
	out := make([]map[string]any, 0, len(names))
	for _, name := range names {
		data, err := builtinFS.ReadFile(name)
		if err != nil {
			panic(fmt.Sprintf("topics: read %s: %v", path.Base(name), err))
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		var res map[string]any
		if err := dec.Decode(&res); err != nil {
			panic(fmt.Sprintf("topics: decode %s: %v", path.Base(name), err))
		}
		out = append(out, res)
	}
	return out
}

// eventType reads the EventTypeExtension of a resource ("" when absent).
func eventType(res map[string]any, root string) (string, error) {
	exts, _ := res["extension"].([]any)
	for i, raw := range exts {
		ext, _ := raw.(map[string]any)
		if ext["url"] != EventTypeExtension {
			continue
		}
		code, ok := ext["valueCode"].(string)
		if !ok || code == "" || !isToken(code) {
			return "", &ValidationError{Element: fmt.Sprintf("%s.extension[%d]", root, i),
				Message: "the event type extension needs a valueCode of letters, digits, '_' or '-'"}
		}
		return code, nil
	}
	return "", nil
}

func isToken(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return len(s) <= 64
}
