package topics_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/fhirsub/fhirsub/topics"
)

func FuzzParse(f *testing.F) {
	f.Add(encounterComplete)
	f.Add(r4bTopic)
	f.Add(basicTopic)
	for _, res := range topics.BuiltInResources() {
		data, _ := json.Marshal(res)
		f.Add(string(data))
	}
	for _, s := range []string{`{}`, `{"resourceType":"Basic"}`, `{"resourceType":"SubscriptionTopic","url":1}`,
		`{"resourceType":"SubscriptionTopic","url":"http://x","status":"active","resourceTrigger":[{"resource":"Encounter","queryCriteria":{"current":"status=%"}}]}`,
		`{"resourceType":"Basic","code":{"coding":[{"system":"http://hl7.org/fhir/fhir-types","code":"SubscriptionTopic"}]},"extension":[{"url":"http://hl7.org/fhir/5.0/StructureDefinition/extension-SubscriptionTopic.resourceTrigger","extension":[{"url":"queryCriteria","extension":[]}]}]}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		dec := json.NewDecoder(bytes.NewReader([]byte(src)))
		dec.UseNumber()
		var m map[string]any
		if dec.Decode(&m) != nil {
			return
		}
		tp, err := topics.Parse(m)
		if err != nil {
			var ve *topics.ValidationError
			if !errors.As(err, &ve) || ve.Element == "" {
				t.Fatalf("error %v is not a *ValidationError naming an element", err)
			}
			return
		}
		if tp.URL == "" || len(tp.Triggers) == 0 {
			t.Fatalf("accepted a topic without url or trigger: %+v", tp)
		}
		for _, rt := range tp.ResourceTypes() {
			_, _ = tp.Triggered(topics.Change{Interaction: "create", Current: map[string]any{"resourceType": rt, "id": "x"}})
			_, _ = tp.Triggered(topics.Change{Interaction: "delete", Previous: map[string]any{"resourceType": rt, "id": "x"}})
		}
	})
}
