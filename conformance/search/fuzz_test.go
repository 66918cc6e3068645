package search_test

import (
	"errors"
	"testing"

	"github.com/fhirsub/fhirsub/conformance/search"
)

// FuzzParse checks that any criteria string either parses or gives an
// error (an *Error naming a parameter, or ErrUnknownType), never a panic;
// that a parsed query matches, narrows and sorts without panicking; and
// that its canonical form parses to the same canonical form.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"Observation?code=http://loinc.org|8867-4,|x&subject=Patient/1&date=ge2024",
		"Observation?value-quantity=gt5.4|http://unitsofmeasure.org|mg&_count=10&_sort=-date,code",
		"Observation?component-code-value-quantity=8480-6$lt60&combo-code-value-quantity=a$ap1e2||mm",
		"Patient?name:contains=ami&family:exact=D%C3%BCpont&birthdate=le1974-12-25T10:00:00%2B01:00",
		"Patient?_id=a\\,b&identifier:text=mrn&telecom:missing=false&gender:not=male",
		"Encounter?subject:Patient=1&_lastUpdated=sa2024-01-01T00:00:00.5Z&_profile:below=http://x",
		"Observation?subject.name=x", "Patient?_has:Observation:patient:code=1", "Observation?_include=*",
		"Observation?date=xx2024", "Observation?date=2024-02-30", "Observation?_count=-1", "Nope?x=1",
		"Observation?code=|", "Observation?code=%zz", "Observation?value-quantity=1|2", "?", "",
		"Observation?code=a\\", "Observation?code-value-quantity=$", "Observation?_sort=",
	} {
		f.Add(s)
	}
	obs := mustLoad(f, "observation-bp.json")
	pat := mustLoad(f, "patient.json")
	f.Fuzz(func(t *testing.T, criteria string) {
		q, err := search.ParseCriteria(criteria)
		if err != nil {
			var se *search.Error
			if !errors.As(err, &se) && !errors.Is(err, search.ErrUnknownType) {
				t.Fatalf("error %v is neither *Error nor ErrUnknownType", err)
			}
			return
		}
		for _, res := range []map[string]any{obs, pat} {
			_, err := q.Match(res)
			if q.HasLinks() && res["resourceType"] == q.Type && !errors.Is(err, search.ErrUnresolved) {
				t.Fatalf("match of an unresolved chain gave %v, want ErrUnresolved (never fail open)", err)
			}
			if !q.HasLinks() && err != nil {
				t.Fatalf("match: %v", err)
			}
		}
		q.Less(obs, pat)
		q.Narrow()
		again, err := search.ParseCriteria(q.String())
		if err != nil {
			t.Fatalf("canonical form %q of %q does not parse: %v", q.String(), criteria, err)
		}
		if again.String() != q.String() {
			t.Fatalf("canonical form not stable: %q then %q", q.String(), again.String())
		}
	})
}
