package smart_test

import (
	"strings"
	"testing"

	"github.com/fhirsub/fhirsub/conformance/smart"
)

func FuzzParseScopes(f *testing.F) {
	for _, s := range []string{
		"", "openid", "patient/Observation.read", "user/*.rs", "system/*.cruds", "patient/*.*",
		"patient/Observation.rs?category=laboratory", "patient/Observation.rs?code=http://loinc.org|1234-5&status=final",
		"patient/Observation.sr", "user/.x", "system/*.read?x", "patient/Observation.rs?_count=1",
		"user/Patient.write launch/patient fhirUser", "patient/Observation.rs?date=ge2024&code:text=a",
	} {
		f.Add(s)
	}
	pat := map[string]any{"resourceType": "Patient", "id": "a"}
	obs := map[string]any{"resourceType": "Observation", "status": "final", "subject": map[string]any{"reference": "Patient/a"},
		"code": map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": "1234-5"}}}}
	f.Fuzz(func(t *testing.T, in string) {
		ss, err := smart.ParseScopes(in)
		if err != nil {
			if ss != nil {
				t.Fatalf("error %v with scopes %v", err, ss)
			}
			return
		}
		// The canonical form parses to itself.
		again, err := smart.ParseScopes(ss.String())
		if err != nil || again.String() != ss.String() {
			t.Fatalf("round trip of %q: %q, %v", ss.String(), again.String(), err)
		}
		for _, s := range ss {
			if s.Perms == 0 || s.Perms&^smart.All != 0 || strings.ContainsAny(s.String(), " \t\n") {
				t.Fatalf("bad scope %+v", s)
			}
		}
		for _, patient := range []string{"", "a", "b"} {
			a := &smart.Access{Patient: patient, Scopes: ss}
			for _, res := range []map[string]any{pat, obs} {
				if a.CanSee(res) && !a.CanRead(res["resourceType"].(string)) {
					t.Fatalf("%q sees a %s it may not read", in, res["resourceType"])
				}
				if patient == "b" && a.CanSee(res) {
					t.Fatalf("%q with patient b sees patient a's %s", in, res["resourceType"])
				}
			}
			raw, err := a.Encode()
			if err != nil {
				t.Fatal(err)
			}
			back, err := smart.Decode(raw)
			if err != nil || back.Scopes.String() != ss.String() || back.Patient != patient {
				t.Fatalf("encode/decode %s: %+v, %v", raw, back, err)
			}
		}
	})
}
