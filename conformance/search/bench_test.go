package search_test

import (
	"testing"

	"github.com/fhirsub/fhirsub/conformance/search"
)

// BenchmarkKeysObservation measures index extraction per resource: all
// token, reference and uri keys of a vital-signs Observation.
func BenchmarkKeysObservation(b *testing.B) {
	res := mustLoad(b, "observation-bp.json")
	if _, err := search.Keys(res); err != nil { // compile the parameters first
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := search.Keys(res); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMatch measures matching one Observation against a typical
// subscription criteria (token, reference, date and quantity clauses).
func BenchmarkMatch(b *testing.B) {
	res := mustLoad(b, "observation-glucose.json")
	q, err := search.ParseCriteria("Observation?code=http://loinc.org|15074-8&subject=Patient/pat-2&date=ge2023-01-01&value-quantity=gt6||mmol/L")
	if err != nil {
		b.Fatal(err)
	}
	if ok, err := q.Match(res); !ok || err != nil {
		b.Fatalf("query does not match: %v", err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := q.Match(res); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseCriteria measures parsing a subscription criteria.
func BenchmarkParseCriteria(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := search.ParseCriteria("Observation?code=http://loinc.org|15074-8,8480-6&subject=Patient/pat-2&date=ge2023-01-01&_sort=-date"); err != nil {
			b.Fatal(err)
		}
	}
}
