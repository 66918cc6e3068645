package search

import (
	"strings"
	"testing"

	"github.com/fhirsub/fhirsub/conformance/definitions"
)

// TestAllParamsCompile compiles every search parameter of every resource
// type: only the special ones, those without an expression and the
// MolecularSequence composites reading %resource may be unsupported.
func TestAllParamsCompile(t *testing.T) {
	total := 0
	for _, rt := range definitions.ResourceTypes() {
		tp := paramsOf(rt)
		if tp == nil || len(tp.list) == 0 {
			t.Fatalf("%s: no parameters", rt)
		}
		for _, p := range tp.list {
			total++
			if p.unsupported == "" {
				continue
			}
			switch {
			case p.typ == "special", p.code == "_text", p.code == "_content", p.code == "_query":
			case rt == "MolecularSequence" && strings.Contains(p.unsupported, "%resource"):
			default:
				t.Errorf("%s.%s (%s): %s", rt, p.code, p.typ, p.unsupported)
			}
		}
	}
	t.Logf("%d (type, parameter) pairs compiled", total)
}

func TestRestrictExpression(t *testing.T) {
	tests := []struct{ expr, rt, want string }{
		{"AllergyIntolerance.code | Condition.code | (DeviceRequest.code.ofType(CodeableConcept))", "Condition", "Condition.code"},
		{"AllergyIntolerance.code | Condition.code | (DeviceRequest.code.ofType(CodeableConcept))", "DeviceRequest", "(DeviceRequest.code.ofType(CodeableConcept))"},
		{"Resource.meta.lastUpdated", "Patient", "Patient.meta.lastUpdated"},
		{"Observation | Observation.component", "Observation", "Observation | Observation.component"},
		{"Patient.telecom.where(system='email') | Person.telecom.where(system='email')", "Person", "Person.telecom.where(system='email')"},
		{"Condition.code", "Patient", ""},
	}
	for _, tc := range tests {
		if got := restrictExpression(tc.expr, tc.rt); got != tc.want {
			t.Errorf("restrictExpression(%q, %s) = %q, want %q", tc.expr, tc.rt, got, tc.want)
		}
	}
}
