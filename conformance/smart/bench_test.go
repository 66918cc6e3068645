package smart_test

import (
	"testing"

	"github.com/fhirsub/fhirsub/conformance/smart"
)

func BenchmarkParseScopes(b *testing.B) {
	const s = "openid fhirUser launch/patient patient/Observation.rs patient/Condition.read user/Patient.cruds patient/Observation.rs?category=laboratory"
	b.ReportAllocs()
	for b.Loop() {
		if _, err := smart.ParseScopes(s); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCanSee is the per-notification cost of a patient-scoped filter.
func BenchmarkCanSee(b *testing.B) {
	a := &smart.Access{Patient: "a", Scopes: smart.MustParseScopes("patient/*.rs")}
	res := obs("a", "vital-signs")
	b.ReportAllocs()
	for b.Loop() {
		if !a.CanSee(res) {
			b.Fatal("not visible")
		}
	}
}
