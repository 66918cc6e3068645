package smart_test

import (
	"errors"
	"net/url"
	"reflect"
	"testing"

	"github.com/fhirsub/fhirsub/conformance/smart"
)

func pat(id string) map[string]any { return map[string]any{"resourceType": "Patient", "id": id} }

func obs(subject, category string) map[string]any {
	return map[string]any{"resourceType": "Observation", "id": "o-" + subject, "status": "final",
		"category": []any{map[string]any{"coding": []any{map[string]any{
			"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": category}}}},
		"code":    map[string]any{"text": "x"},
		"subject": map[string]any{"reference": "Patient/" + subject}}
}

func access(t *testing.T, patient, scopes string) *smart.Access {
	t.Helper()
	ss, err := smart.ParseScopes(scopes)
	if err != nil {
		t.Fatal(err)
	}
	return &smart.Access{Subject: "s", Patient: patient, Scopes: ss}
}

func TestAccessTypes(t *testing.T) {
	tests := []struct {
		name, patient, scopes string
		typ                   string
		read, write           bool
		perms                 map[smart.Permission]bool
	}{
		{"v1 read", "a", "patient/Observation.read", "Observation", true, false,
			map[smart.Permission]bool{smart.Read: true, smart.Search: true, smart.Create: false}},
		{"v1 read other type", "a", "patient/Observation.read", "Patient", false, false, nil},
		{"v1 write only", "", "user/Observation.write", "Observation", false, true,
			map[smart.Permission]bool{smart.Create: true, smart.Update: true, smart.Delete: true, smart.Read: false}},
		{"v2 r without s", "", "user/Observation.r", "Observation", true, false,
			map[smart.Permission]bool{smart.Read: true, smart.Search: false}},
		{"v2 s without r", "", "user/Observation.s", "Observation", true, false,
			map[smart.Permission]bool{smart.Read: false, smart.Search: true}},
		{"v2 c only", "", "user/Observation.c", "Observation", false, true,
			map[smart.Permission]bool{smart.Create: true, smart.Update: false, smart.Delete: false}},
		{"user star", "", "user/*.rs", "Condition", true, false, nil},
		{"system cruds", "", "system/*.cruds", "Condition", true, true, nil},
		{"patient scope without patient", "", "patient/*.*", "Observation", false, false, nil},
		{"patient scope without patient, user scope works", "", "patient/*.* user/Observation.rs", "Observation", true, false, nil},
		{"no scopes", "a", "openid fhirUser", "Observation", false, false, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := access(t, tc.patient, tc.scopes)
			if got := a.CanRead(tc.typ); got != tc.read {
				t.Errorf("CanRead(%s) = %v, want %v", tc.typ, got, tc.read)
			}
			if got := a.CanWrite(tc.typ); got != tc.write {
				t.Errorf("CanWrite(%s) = %v, want %v", tc.typ, got, tc.write)
			}
			for p, want := range tc.perms {
				if got := a.Allows(tc.typ, p); got != want {
					t.Errorf("Allows(%s, %s) = %v, want %v", tc.typ, p, got, want)
				}
			}
		})
	}
}

func TestAccessCompartment(t *testing.T) {
	a := access(t, "a", "patient/*.rs")
	cases := []struct {
		name string
		res  map[string]any
		want bool
	}{
		{"own patient", pat("a"), true},
		{"other patient", pat("b"), false},
		{"own observation", obs("a", "vital-signs"), true},
		{"other observation", obs("b", "vital-signs"), false},
		{"performer in compartment", map[string]any{"resourceType": "Observation", "status": "final", "code": map[string]any{"text": "x"},
			"subject": map[string]any{"reference": "Patient/b"}, "performer": []any{map[string]any{"reference": "Patient/a"}}}, true},
		{"absolute reference", map[string]any{"resourceType": "Condition",
			"subject": map[string]any{"reference": "http://example.org/fhir/Patient/a"}}, true},
		{"outside the compartment type", map[string]any{"resourceType": "Practitioner", "id": "a"}, false},
		{"no type", map[string]any{"id": "a"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := a.CanSee(tc.res); got != tc.want {
				t.Errorf("CanSee = %v, want %v", got, tc.want)
			}
		})
	}
	if !a.CanSeePatient("a") || a.CanSeePatient("b") || a.CanSeePatient("") {
		t.Error("CanSeePatient: want a only")
	}
	// Patient in context limits user scopes too.
	u := access(t, "a", "user/*.cruds")
	if u.CanSee(obs("b", "x")) || !u.CanSee(obs("a", "x")) || u.Permits(obs("b", "x"), smart.Create) {
		t.Error("patient context must limit user scopes")
	}
	// Without a patient, user scopes see everyone.
	n := access(t, "", "user/*.rs")
	if !n.CanSee(obs("b", "x")) || !n.CanSeePatient("b") || n.Restricted("Observation", smart.Search) {
		t.Error("user/*.rs without patient must see everything")
	}
	// Writes only, no read: CanSeePatient is false.
	w := access(t, "", "user/*.cud")
	if w.CanSeePatient("a") || w.CanSee(pat("a")) {
		t.Error("write-only access must not see")
	}
}

func TestAccessGranular(t *testing.T) {
	a := access(t, "a", "patient/Observation.rs?category=laboratory patient/Patient.r")
	if !a.CanSee(obs("a", "laboratory")) {
		t.Error("lab observation of a must be visible")
	}
	if a.CanSee(obs("a", "vital-signs")) {
		t.Error("vital-signs observation must be hidden by the filter")
	}
	if a.CanSee(obs("b", "laboratory")) {
		t.Error("lab observation of b must be hidden by the compartment")
	}
	if !a.Restricted("Observation", smart.Search) {
		t.Error("granular access must be restricted")
	}
	alts, all := a.Narrowings("Observation", smart.Search)
	want := []url.Values{
		{"category": {"laboratory"}, "subject": {"Patient/a"}},
		{"category": {"laboratory"}, "performer": {"Patient/a"}},
	}
	if all || !reflect.DeepEqual(alts, want) {
		t.Errorf("Narrowings = %v, %v; want %v", alts, all, want)
	}
	if alts, all := a.Narrowings("Patient", smart.Read); all || !reflect.DeepEqual(alts, []url.Values{{"_id": {"a"}}}) {
		t.Errorf("Narrowings(Patient) = %v, %v", alts, all)
	}
	if alts, all := a.Narrowings("Condition", smart.Search); all || alts != nil {
		t.Errorf("Narrowings(Condition) = %v, %v; want nothing", alts, all)
	}
	if _, all := access(t, "", "user/*.rs").Narrowings("Condition", smart.Search); !all {
		t.Error("user/*.rs needs no narrowing")
	}
}

func TestFullAndZero(t *testing.T) {
	f := smart.Full()
	if f.Subject != smart.Anonymous || !f.CanWrite("Observation") || !f.CanSee(obs("z", "x")) || f.Restricted("Observation", smart.Read) {
		t.Error("Full must allow everything")
	}
	var zero smart.Access
	if zero.CanRead("Patient") || zero.CanSee(pat("a")) || zero.CanSeePatient("a") {
		t.Error("the zero Access must allow nothing")
	}
	var nilAccess *smart.Access
	if nilAccess.CanRead("Patient") || nilAccess.CanSee(pat("a")) || !nilAccess.Restricted("Patient", smart.Read) {
		t.Error("a nil Access must allow nothing")
	}
	if _, err := nilAccess.Encode(); err == nil {
		t.Error("encoding nil must fail")
	}
}

func TestEncodeDecode(t *testing.T) {
	a := access(t, "a", "patient/Observation.rs?category=laboratory user/Patient.read")
	a.Claims = map[string]any{"iss": "x"}
	raw, err := a.Encode()
	if err != nil {
		t.Fatal(err)
	}
	b, err := smart.Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	if b.Subject != "s" || b.Patient != "a" || b.Scopes.String() != a.Scopes.String() {
		t.Errorf("decoded %+v from %s", b, raw)
	}
	if !b.CanSee(obs("a", "laboratory")) || b.CanSee(obs("a", "vital-signs")) {
		t.Error("decoded access decides differently")
	}
	for _, bad := range []string{``, `{`, `[]`, `{"scope":"patient/Nope.rs"}`, `{"scope":7}`} {
		if _, err := smart.Decode([]byte(bad)); err == nil {
			t.Errorf("Decode(%q) succeeded", bad)
		}
	}
}

func TestFromClaims(t *testing.T) {
	tests := []struct {
		name    string
		claims  map[string]any
		patient string
		scopes  string
		err     error
	}{
		{"scope string", map[string]any{"sub": "u", "scope": "openid patient/*.rs", "patient": "p1"}, "p1", "patient/*.rs", nil},
		{"scp array", map[string]any{"scp": []any{"user/*.rs", "openid"}}, "", "user/*.rs", nil},
		{"scp string", map[string]any{"scp": "user/*.rs"}, "", "user/*.rs", nil},
		{"fhirUser patient", map[string]any{"scope": "patient/*.rs", "fhirUser": "https://h/fhir/Patient/p2"}, "p2", "patient/*.rs", nil},
		{"fhirUser practitioner", map[string]any{"scope": "user/*.rs", "fhirUser": "Practitioner/d"}, "", "user/*.rs", nil},
		{"patient claim wins", map[string]any{"scope": "patient/*.rs", "patient": "p1", "fhirUser": "Patient/p2"}, "p1", "patient/*.rs", nil},
		{"bad patient id", map[string]any{"scope": "patient/*.rs", "patient": "a/b"}, "", "", smart.ErrInvalidClaims},
		{"patient not a string", map[string]any{"scope": "patient/*.rs", "patient": 3.0}, "", "", smart.ErrInvalidClaims},
		{"scope not a string", map[string]any{"scope": []any{"user/*.rs"}}, "", "", smart.ErrInvalidClaims},
		{"scp with spaces", map[string]any{"scp": []any{"user/*.rs user/*.cud"}}, "", "", smart.ErrInvalidClaims},
		{"scp number", map[string]any{"scp": 1.0}, "", "", smart.ErrInvalidClaims},
		{"bad scope", map[string]any{"scope": "user/*.rsx"}, "", "", smart.ErrInvalidScope},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := smart.FromClaims(tc.claims)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if a.Patient != tc.patient || a.Scopes.String() != tc.scopes {
				t.Errorf("got patient %q scopes %q", a.Patient, a.Scopes)
			}
		})
	}
}
