package fhirpatch

import (
	"encoding/json"
	"strings"
	"testing"
)

func decode(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		t.Fatalf("bad test JSON %s: %v", s, err)
	}
	return m
}

// operation builds one operation parameter from name/value-part pairs.
func operation(parts ...map[string]any) map[string]any {
	ps := make([]any, len(parts))
	for i, p := range parts {
		ps[i] = p
	}
	return map[string]any{"name": "operation", "part": ps}
}

func part(name, key string, v any) map[string]any { return map[string]any{"name": name, key: v} }

func patch(ops ...map[string]any) map[string]any {
	ps := make([]any, len(ops))
	for i, o := range ops {
		ps[i] = o
	}
	return map[string]any{"resourceType": "Parameters", "parameter": ps}
}

func canon(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

const base = `{"resourceType":"Patient","id":"p","active":true,"birthDate":"1980-01-01",
 "name":[{"use":"official","family":"Doe","given":["Ann","Beth","Cara"]},{"use":"nickname","given":["Annie"]}],
 "identifier":[{"system":"s","value":"1"},{"system":"s","value":"2"}]}`

func TestApply(t *testing.T) {
	typ := func(s string) map[string]any { return part("type", "valueCode", s) }
	path := func(s string) map[string]any { return part("path", "valueString", s) }
	cases := []struct {
		name  string
		patch map[string]any
		check func(t *testing.T, res map[string]any)
	}{
		{"replace primitive", patch(operation(typ("replace"), path("Patient.birthDate"), part("value", "valueDate", "1990-02-02"))),
			func(t *testing.T, r map[string]any) {
				if r["birthDate"] != "1990-02-02" {
					t.Errorf("birthDate = %v", r["birthDate"])
				}
			}},
		{"replace indexed primitive", patch(operation(typ("replace"), path("Patient.name[0].given[1]"), part("value", "valueString", "Bea"))),
			func(t *testing.T, r map[string]any) {
				if got := canon(t, r["name"].([]any)[0].(map[string]any)["given"]); got != `["Ann","Bea","Cara"]` {
					t.Errorf("given = %s", got)
				}
			}},
		{"delete object by where", patch(operation(typ("delete"), path("Patient.name.where(use='nickname')"))),
			func(t *testing.T, r map[string]any) {
				if n := len(r["name"].([]any)); n != 1 {
					t.Errorf("%d names left, want 1", n)
				}
			}},
		{"delete missing is a no-op", patch(operation(typ("delete"), path("Patient.deceased"))),
			func(t *testing.T, r map[string]any) {}},
		{"add to a list and a new single element", patch(
			operation(typ("add"), path("Patient"), part("name", "valueString", "identifier"),
				part("value", "valueIdentifier", map[string]any{"system": "s", "value": "3"})),
			operation(typ("add"), path("Patient"), part("name", "valueString", "gender"), part("value", "valueCode", "female")),
			operation(typ("add"), path("Patient"), part("name", "valueString", "telecom"),
				map[string]any{"name": "value", "part": []any{part("system", "valueCode", "phone"), part("value", "valueString", "555")}}),
		), func(t *testing.T, r map[string]any) {
			if n := len(r["identifier"].([]any)); n != 3 || r["gender"] != "female" {
				t.Errorf("identifiers %d, gender %v", n, r["gender"])
			}
			if got := canon(t, r["telecom"]); got != `[{"system":"phone","value":"555"}]` {
				t.Errorf("telecom = %s (a repeating element is added as a list)", got)
			}
		}},
		{"insert and move", patch(
			operation(typ("insert"), path("Patient.name[0].given"), part("index", "valueInteger", json.Number("0")), part("value", "valueString", "Zed")),
			operation(typ("move"), path("Patient.name[0].given"), part("source", "valueInteger", json.Number("0")), part("destination", "valueInteger", json.Number("3"))),
		), func(t *testing.T, r map[string]any) {
			if got := canon(t, r["name"].([]any)[0].(map[string]any)["given"]); got != `["Ann","Beth","Cara","Zed"]` {
				t.Errorf("given = %s", got)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := decode(t, base)
			if err := Apply(res, tc.patch); err != nil {
				t.Fatalf("Apply: %v", err)
			}
			tc.check(t, res)
		})
	}
}

func TestApplyRefuses(t *testing.T) {
	typ := func(s string) map[string]any { return part("type", "valueCode", s) }
	path := func(s string) map[string]any { return part("path", "valueString", s) }
	for name, p := range map[string]map[string]any{
		"not Parameters":          {"resourceType": "Patient"},
		"no operation":            patch(),
		"unknown type":            patch(operation(typ("frobnicate"), path("Patient.active"))),
		"replace of two":          patch(operation(typ("replace"), path("Patient.identifier"), part("value", "valueString", "x"))),
		"replace of none":         patch(operation(typ("replace"), path("Patient.gender"), part("value", "valueCode", "male"))),
		"delete of two":           patch(operation(typ("delete"), path("Patient.identifier"))),
		"add existing single":     patch(operation(typ("add"), path("Patient"), part("name", "valueString", "active"), part("value", "valueBoolean", false))),
		"insert past the end":     patch(operation(typ("insert"), path("Patient.identifier"), part("index", "valueInteger", json.Number("9")), part("value", "valueString", "x"))),
		"bad expression":          patch(operation(typ("delete"), path("Patient.name.where("))),
		"missing value":           patch(operation(typ("replace"), path("Patient.active"))),
		"extra part":              patch(operation(typ("delete"), path("Patient.active"), part("index", "valueInteger", json.Number("1")))),
		"negative index":          patch(operation(typ("insert"), path("Patient.identifier"), part("index", "valueInteger", json.Number("-1")), part("value", "valueString", "x"))),
		"parameter not operation": {"resourceType": "Parameters", "parameter": []any{map[string]any{"name": "x"}}},
	} {
		t.Run(name, func(t *testing.T) {
			res := decode(t, base)
			err := Apply(res, p)
			t.Logf("%s: %v", name, err)
			if err == nil {
				t.Fatalf("Apply accepted %s", canon(t, p))
			}
		})
	}
}
