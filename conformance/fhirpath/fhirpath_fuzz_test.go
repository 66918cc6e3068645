package fhirpath

import (
	"strings"
	"testing"

	"github.com/fhirsub/fhirsub/conformance/definitions"
)

// fuzzSeeds are valid and invalid expressions; the search-parameter
// expressions are added too.
var fuzzSeeds = []string{
	"Patient.name.given",
	"Observation.value.ofType(Quantity).value > 5 'mg'",
	"Observation.subject.where(resolve() is Patient)",
	"(1 | 2 | 3).where($this > 1).select($this * 2)",
	"%current.status != %previous.status",
	"@2024-01-01T10:00:00.123+01:00 < @2024",
	"@T10:30",
	"'a\\u0041\\n' & `x y`",
	"iif(true, 1, 2).toString().length()",
	"Patient.extension('http://x').value.as(string)",
	"a.b[0].c is FHIR.Quantity",
	"-5.5.abs() + -(1)",
	"{} = {}",
	"name.descendants().count()",
	"x.repeat(item).linkId",
	"'abc'.replace('', 'xx').matches('a.*')",
	// invalid
	"",
	"(",
	"Patient.",
	"Patient..name",
	"1 +",
	"'unterminated",
	"@2024-13",
	"@",
	"$that",
	"%",
	"f(",
	"where(",
	"a is",
	"a as System.",
	"1 'mg",
	"/* open comment",
	"`x",
	"\x00\xff",
	"a[1",
	"{1}",
	"a.where(1,2)",
}

const fuzzResource = `{"resourceType":"Observation","id":"o1","status":"final",
 "code":{"coding":[{"system":"http://loinc.org","code":"1"},{"code":"2"}],"text":"t"},
 "subject":{"reference":"Patient/p1"},"valueQuantity":{"value":1.5,"code":"mg"},
 "effectiveDateTime":"2024-01-01","component":[{"code":{"text":"c"},"valueString":"v"}],
 "contained":[{"resourceType":"Patient","id":"c","name":[{"given":["a","b"]}]}],
 "extension":[{"url":"http://x","valueString":"s"}]}`

func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	for i, sp := range definitions.AllSearchParams() {
		if i%10 == 0 && sp.Expression != "" {
			f.Add(sp.Expression)
		}
	}
	res := decode(f, fuzzResource)
	env := &Env{Vars: map[string]any{"current": res, "previous": nil}}
	f.Fuzz(func(t *testing.T, src string) {
		e, err := Parse(src)
		if err != nil {
			if _, ok := err.(*ParseError); !ok {
				t.Fatalf("Parse(%q) error %T is not a *ParseError", src, err)
			}
			return
		}
		canon := e.canonical()
		again, err := Parse(canon)
		if err != nil {
			t.Fatalf("canonical form %q of %q does not parse: %v", canon, src, err)
		}
		if again.canonical() != canon {
			t.Fatalf("canonical form of %q is not stable: %q then %q", src, canon, again.canonical())
		}
		if _, err := e.Evaluate(res, env); err != nil && strings.Contains(err.Error(), "internal error") {
			t.Fatalf("Evaluate(%q) panicked: %v", src, err)
		}
	})
}
