package fhirpath

import (
	"os"
	"testing"
)

func benchResource(b *testing.B, name string) map[string]any {
	b.Helper()
	raw, err := os.ReadFile("testdata/corpus/" + name)
	if err != nil {
		b.Fatal(err)
	}
	return decode(b, string(raw))
}

func benchEvaluate(b *testing.B, file, expr string) {
	res := benchResource(b, file)
	e := MustParse(expr)
	if _, err := e.Evaluate(res, nil); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := e.Evaluate(res, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEvaluatePath is a plain token search parameter (Observation-code).
func BenchmarkEvaluatePath(b *testing.B) {
	benchEvaluate(b, "observation-lab.json", "Observation.code")
}

// BenchmarkEvaluateChoice is a choice-type search parameter (value-quantity).
func BenchmarkEvaluateChoice(b *testing.B) {
	benchEvaluate(b, "observation-lab.json", "(Observation.value.ofType(Quantity)) | (Observation.value.ofType(SampledData))")
}

// BenchmarkEvaluateResolve is a reference search parameter with a type
// test on the target (Observation-patient).
func BenchmarkEvaluateResolve(b *testing.B) {
	benchEvaluate(b, "observation-lab.json", "Observation.subject.where(resolve() is Patient)")
}

// BenchmarkEvaluateUnion is a multi-resource union (the shared "phone"
// parameter) on a Patient.
func BenchmarkEvaluateUnion(b *testing.B) {
	benchEvaluate(b, "patient.json", "Patient.telecom.where(system='phone') | Person.telecom.where(system='phone') | Practitioner.telecom.where(system='phone') | PractitionerRole.telecom.where(system='phone') | RelatedPerson.telecom.where(system='phone')")
}

// BenchmarkEvaluateTrigger is a topic trigger on %current/%previous.
func BenchmarkEvaluateTrigger(b *testing.B) {
	res := benchResource(b, "observation-lab.json")
	prev := map[string]any{"resourceType": "Observation", "status": "preliminary"}
	e := MustParse("%current.status = 'final' and (%previous.exists().not() or %previous.status != 'final') and %current.interpretation.coding.where(code in ('HH' | 'LL')).exists()")
	env := &Env{Vars: map[string]any{"current": res, "previous": prev}}
	if ok, err := e.EvaluateBool(res, env); err != nil || !ok {
		b.Fatalf("trigger = %v, %v", ok, err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.EvaluateBool(res, env); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParse parses a typical search-parameter expression.
func BenchmarkParse(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse("Observation.component.where(code.coding.code = '8480-6').value.ofType(Quantity) | Observation.subject.where(resolve() is Patient)"); err != nil {
			b.Fatal(err)
		}
	}
}
