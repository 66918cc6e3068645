package topics_test

import (
	"testing"

	"github.com/fhirsub/fhirsub/topics"
)

func TestBuiltInParse(t *testing.T) {
	got := topics.BuiltIn()
	want := map[string]string{
		"critical-result":     "critical_result",
		"new-order":           "new_order",
		"result-available":    "result_available",
		"order-status-change": "order_status_change",
		"task":                "task",
		"communication":       "communication",
	}
	if len(got) != len(want) {
		t.Fatalf("BuiltIn() has %d topics, want %d", len(got), len(want))
	}
	for _, tp := range got {
		name := tp.URL[len(topics.BuiltInBase):]
		if want[name] == "" || tp.EventType != want[name] {
			t.Errorf("%s: EventType %q, want %q", tp.URL, tp.EventType, want[name])
		}
		if tp.Status != "active" {
			t.Errorf("%s: status %q", tp.URL, tp.Status)
		}
		for _, rt := range tp.ResourceTypes() {
			if !canFilter(tp, rt, "patient") {
				t.Errorf("%s: %s cannot be filtered by patient", tp.URL, rt)
			}
			if !hasShape(tp, rt, rt+":patient") {
				t.Errorf("%s: the %s shape does not include the patient", tp.URL, rt)
			}
		}
	}
	if n := len(topics.BuiltInResources()); n != len(want) {
		t.Errorf("BuiltInResources() has %d resources", n)
	}
}

func canFilter(tp *topics.Topic, rt, param string) bool {
	for _, fd := range tp.CanFilterBy {
		if fd.Param == param && (fd.Resource == "" || fd.Resource == rt) {
			return true
		}
	}
	return false
}

func hasShape(tp *topics.Topic, rt, include string) bool {
	for _, sh := range tp.Shapes {
		if sh.Resource != rt {
			continue
		}
		for _, inc := range sh.Include {
			if inc == include {
				return true
			}
		}
	}
	return false
}

// obs builds an Observation with a status and an interpretation code
// ("" for none).
func obs(tb testing.TB, status, interp string) map[string]any {
	tb.Helper()
	src := `{"resourceType":"Observation","id":"k1","status":"` + status + `",
		"category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory"}]}],
		"code":{"coding":[{"system":"http://loinc.org","code":"2823-3","display":"Potassium"}]},
		"subject":{"reference":"Patient/p1"},
		"valueQuantity":{"value":6.9,"unit":"mmol/L","system":"http://unitsofmeasure.org","code":"mmol/L"}`
	if interp != "" {
		src += `,"interpretation":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation","code":"` + interp + `"}]}]`
	}
	return mustJSON(tb, src+"}")
}

func order(tb testing.TB, rt, status, owner string) map[string]any {
	tb.Helper()
	src := `{"resourceType":"` + rt + `","id":"o1","status":"` + status + `","intent":"order",
		"subject":{"reference":"Patient/p1"}`
	if owner != "" {
		src += `,"owner":{"reference":"` + owner + `"}`
	}
	return mustJSON(tb, src+"}")
}

func TestBuiltInTriggers(t *testing.T) {
	report := func(status string) map[string]any {
		return mustJSON(t, `{"resourceType":"DiagnosticReport","id":"r1","status":"`+status+`",
			"code":{"coding":[{"system":"http://loinc.org","code":"24323-8"}]},
			"subject":{"reference":"Patient/p1"},"result":[{"reference":"Observation/k1"}]}`)
	}
	msg := mustJSON(t, `{"resourceType":"Communication","id":"c1","status":"completed",
		"subject":{"reference":"Patient/p1"},"sender":{"reference":"Practitioner/a"},
		"recipient":[{"reference":"Practitioner/b"}],"payload":[{"contentString":"Bed 4 needs review"}]}`)
	tests := []struct {
		topic string
		name  string
		c     topics.Change
		want  bool
	}{
		{"critical-result", "create final HH", topics.Change{Interaction: "create", Current: obs(t, "final", "HH")}, true},
		{"critical-result", "create preliminary LL", topics.Change{Interaction: "create", Current: obs(t, "preliminary", "LL")}, true},
		{"critical-result", "update normal to AA", topics.Change{Interaction: "update", Previous: obs(t, "final", "N"), Current: obs(t, "final", "AA")}, true},
		{"critical-result", "update registered HH to final HH", topics.Change{Interaction: "update", Previous: obs(t, "registered", "HH"), Current: obs(t, "final", "HH")}, true},
		{"critical-result", "miss: create final H (high, not critical)", topics.Change{Interaction: "create", Current: obs(t, "final", "H")}, false},
		{"critical-result", "miss: create registered HH", topics.Change{Interaction: "create", Current: obs(t, "registered", "HH")}, false},
		{"critical-result", "miss: create final without interpretation", topics.Change{Interaction: "create", Current: obs(t, "final", "")}, false},
		{"critical-result", "miss: re-save of a critical result", topics.Change{Interaction: "update", Previous: obs(t, "final", "HH"), Current: obs(t, "amended", "HH")}, false},
		{"critical-result", "miss: delete", topics.Change{Interaction: "delete", Previous: obs(t, "final", "HH")}, false},

		{"new-order", "ServiceRequest created active", topics.Change{Interaction: "create", Current: order(t, "ServiceRequest", "active", "")}, true},
		{"new-order", "MedicationRequest created draft", topics.Change{Interaction: "create", Current: order(t, "MedicationRequest", "draft", "")}, true},
		{"new-order", "miss: ServiceRequest created completed", topics.Change{Interaction: "create", Current: order(t, "ServiceRequest", "completed", "")}, false},
		{"new-order", "miss: ServiceRequest updated active", topics.Change{Interaction: "update", Previous: order(t, "ServiceRequest", "draft", ""), Current: order(t, "ServiceRequest", "active", "")}, false},
		{"new-order", "miss: Task created", topics.Change{Interaction: "create", Current: order(t, "Task", "requested", "")}, false},

		{"result-available", "DiagnosticReport preliminary to final", topics.Change{Interaction: "update", Previous: report("preliminary"), Current: report("final")}, true},
		{"result-available", "DiagnosticReport created final", topics.Change{Interaction: "create", Current: report("final")}, true},
		{"result-available", "Observation registered to corrected", topics.Change{Interaction: "update", Previous: obs(t, "registered", ""), Current: obs(t, "corrected", "")}, true},
		{"result-available", "miss: DiagnosticReport final to amended", topics.Change{Interaction: "update", Previous: report("final"), Current: report("amended")}, false},
		{"result-available", "miss: DiagnosticReport created partial", topics.Change{Interaction: "create", Current: report("partial")}, false},
		{"result-available", "miss: Observation deleted final", topics.Change{Interaction: "delete", Previous: obs(t, "final", "")}, false},

		{"order-status-change", "ServiceRequest active to completed", topics.Change{Interaction: "update", Previous: order(t, "ServiceRequest", "active", ""), Current: order(t, "ServiceRequest", "completed", "")}, true},
		{"order-status-change", "MedicationRequest active to on-hold", topics.Change{Interaction: "update", Previous: order(t, "MedicationRequest", "active", ""), Current: order(t, "MedicationRequest", "on-hold", "")}, true},
		{"order-status-change", "miss: same status", topics.Change{Interaction: "update", Previous: order(t, "ServiceRequest", "active", ""), Current: order(t, "ServiceRequest", "active", "")}, false},
		{"order-status-change", "miss: create", topics.Change{Interaction: "create", Current: order(t, "ServiceRequest", "active", "")}, false},

		{"task", "created", topics.Change{Interaction: "create", Current: order(t, "Task", "requested", "")}, true},
		{"task", "status changed", topics.Change{Interaction: "update", Previous: order(t, "Task", "requested", "Practitioner/a"), Current: order(t, "Task", "in-progress", "Practitioner/a")}, true},
		{"task", "owner changed", topics.Change{Interaction: "update", Previous: order(t, "Task", "requested", "Practitioner/a"), Current: order(t, "Task", "requested", "Practitioner/b")}, true},
		{"task", "owner assigned", topics.Change{Interaction: "update", Previous: order(t, "Task", "requested", ""), Current: order(t, "Task", "requested", "Practitioner/b")}, true},
		{"task", "owner removed", topics.Change{Interaction: "update", Previous: order(t, "Task", "requested", "Practitioner/a"), Current: order(t, "Task", "requested", "")}, true},
		{"task", "miss: note edited", topics.Change{Interaction: "update", Previous: order(t, "Task", "requested", "Practitioner/a"), Current: order(t, "Task", "requested", "Practitioner/a")}, false},
		{"task", "miss: deleted", topics.Change{Interaction: "delete", Previous: order(t, "Task", "requested", "")}, false},

		{"communication", "created", topics.Change{Interaction: "create", Current: msg}, true},
		{"communication", "miss: updated", topics.Change{Interaction: "update", Previous: msg, Current: msg}, false},
	}
	for _, tc := range tests {
		t.Run(tc.topic+"/"+tc.name, func(t *testing.T) {
			got, err := mustBuiltIn(t, tc.topic).Triggered(tc.c)
			if err != nil {
				t.Fatalf("Triggered: %v", err)
			}
			if got != tc.want {
				t.Errorf("Triggered = %v, want %v", got, tc.want)
			}
		})
	}
}
