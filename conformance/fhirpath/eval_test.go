package fhirpath

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
)

func decode(tb testing.TB, s string) map[string]any {
	tb.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		tb.Fatalf("decode %s: %v", s, err)
	}
	return m
}

const testObservation = `{"resourceType":"Observation","id":"o1","status":"final",
 "code":{"coding":[{"system":"http://loinc.org","code":"2823-3"}]},
 "subject":{"reference":"Patient/p1"},
 "effectiveDateTime":"2024-02-11T07:00:00Z",
 "valueQuantity":{"value":6.30,"unit":"mmol/L","system":"http://unitsofmeasure.org","code":"mmol/L"},
 "performer":[{"reference":"https://example.org/fhir/Organization/lab/_history/3"},{"reference":"#c1"},{"display":"no ref"}],
 "contained":[{"resourceType":"Practitioner","id":"c1","name":[{"family":"Inside"}]}],
 "extension":[{"url":"http://example.org/a","valueString":"x"},{"url":"http://example.org/b","valueInteger":3}]}`

// show prints a result compactly: items as JSON, with their types.
func show(vs []Value) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		var b bytes.Buffer
		switch d := v.Data.(type) {
		case Temporal:
			b.WriteString("@" + d.String())
		case Quantity:
			b.WriteString(d.String())
		default:
			enc := json.NewEncoder(&b)
			enc.SetEscapeHTML(false)
			_ = enc.Encode(d)
		}
		parts[i] = strings.TrimSpace(b.String())
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func TestEvaluate(t *testing.T) {
	obs := decode(t, testObservation)
	tests := []struct{ expr, want string }{
		// empty propagation
		{"{} = 1", "[]"},
		{"1 = {}", "[]"},
		{"{} != {}", "[]"},
		{"{} < 1", "[]"},
		{"{} + 1", "[]"},
		{"Observation.missing.exists()", "[false]"},
		{"Observation.missing.empty()", "[true]"},
		{"{} ~ {}", "[true]"},
		{"{} !~ 1", "[true]"},
		{"{}.count()", "[0]"},
		{"{} in (1 | 2)", "[]"},
		{"(1 | 2) contains {}", "[]"},
		// three-valued logic
		{"true and {}", "[]"},
		{"false and {}", "[false]"},
		{"{} and false", "[false]"},
		{"true or {}", "[true]"},
		{"false or {}", "[]"},
		{"{} or {}", "[]"},
		{"true xor {}", "[]"},
		{"true xor false", "[true]"},
		{"true xor true", "[false]"},
		{"false implies {}", "[true]"},
		{"{} implies true", "[true]"},
		{"{} implies false", "[]"},
		{"true implies false", "[false]"},
		{"{}.not()", "[]"},
		{"true.not()", "[false]"},
		{"'x' and true", "[true]"},
		// equality vs equivalence
		{"'abc' = 'ABC'", "[false]"},
		{"'abc' ~ 'ABC'", "[true]"},
		{"'a  b ' ~ 'A B'", "[false]"},
		{"'a\tb' ~ 'A B'", "[true]"},
		{"1 = 1.0", "[true]"},
		// decimals are equivalent when equal at the least precision
		{"1.0 ~ 1.04", "[true]"},
		{"1.0 ~ 1.06", "[false]"},
		{"1.0 = 1.04", "[false]"},
		{"1 ~ 1.4", "[true]"},
		{"1 ~ 2.4", "[false]"},
		{"1.20 ~ 1.2", "[true]"},
		{"(1 | 2) = (1 | 2)", "[true]"},
		{"(1 | 2) = (2 | 1)", "[false]"},
		{"(1 | 2) ~ (2 | 1)", "[true]"},
		{"(1 | 2) = (1 | 2 | 3)", "[false]"},
		{"'1' = 1", "[false]"},
		{"Observation.code = Observation.code", "[true]"},
		{"Observation.code.coding.code = '2823-3'", "[true]"},
		// dates with different precision
		{"@2024-01-01 = @2024-01-01", "[true]"},
		{"@2024-01 = @2024-01-01", "[]"},
		{"@2024-01 ~ @2024-01-01", "[false]"},
		{"@2024 < @2025-06-01", "[true]"},
		{"@2024 < @2024-06-01", "[]"},
		{"@2024-01-01T10:00:00Z = @2024-01-01T11:00:00+01:00", "[true]"},
		{"@2024-01-01T10:00Z < @2024-01-01T10:00:01Z", "[]"},
		{"@2024-01-01T10:00:00.5Z > @2024-01-01T10:00:00Z", "[true]"},
		{"@T10:00 < @T11:00", "[true]"},
		{"@2024-01-01 = @2024-01-01T00:00:00Z", "[]"},
		{"Observation.effective >= @2024-02-11", "[]"},
		{"Observation.effective >= @2024-02-10", "[true]"},
		{"Observation.effective < @2024-02-11T07:00:01Z", "[true]"},
		{"@2024-01-31 + 1 month", "[@2024-03-02]"},
		{"@2024-01-01T10:00:00Z - 2 hours", "[@2024-01-01T08:00:00Z]"},
		// quantities
		{"Observation.value > 6 'mmol/L'", "[true]"},
		{"Observation.value = 6.3 'mmol/L'", "[true]"},
		{"Observation.value = 6.3 'mg'", "[]"},
		{"5 'mg' < 6 'mg'", "[true]"},
		{"1 week = 1 'wk'", "[true]"},
		{"1 week = 7 days", "[]"}, // no UCUM conversion: unknown
		{"7 days = 7 'd'", "[true]"},
		{"1 year ~ 1 'a'", "[true]"},
		{"1 year = 1 'a'", "[]"},
		// typing and choice elements
		{"Observation.value.unit", `["mmol/L"]`},
		{"Observation.value is Quantity", "[true]"},
		{"Observation.value is FHIR.Quantity", "[true]"},
		{"Observation.value is System.Quantity", "[false]"},
		{"Observation.value.ofType(CodeableConcept)", "[]"},
		{"(Observation.value as Quantity).value", "[6.30]"},
		{"Observation.effective.ofType(dateTime)", `["2024-02-11T07:00:00Z"]`},
		{"Observation is DomainResource", "[true]"},
		{"Observation.is(Resource)", "[true]"},
		{"'a' is String", "[true]"},
		{"1 is Integer", "[true]"},
		{"1.5 is Decimal", "[true]"},
		{"Observation.status is code", "[true]"},
		{"Observation.status is string", "[true]"},
		{"Patient.name", "[]"},
		// resolve and references
		{"Observation.subject.resolve() is Patient", "[true]"},
		{"Observation.subject.where(resolve() is Patient).reference", `["Patient/p1"]`},
		{"Observation.performer.resolve().id", `["lab", "c1"]`},
		{"Observation.performer[1].resolve().name.family", `["Inside"]`},
		{"Observation.performer.where(resolve() is Organization).count()", "[1]"},
		// extensions, indexers, subsetting
		{"Observation.extension('http://example.org/b').value", "[3]"},
		{"Observation.extension('http://example.org/b').value is integer", "[true]"},
		{"Observation.extension.url[1]", `["http://example.org/b"]`},
		{"Observation.extension.url[5]", "[]"},
		{"(1 | 2 | 3).tail()", "[2, 3]"},
		{"(1 | 2 | 3).last()", "[3]"},
		{"(1 | 2 | 3).skip(1).take(1)", "[2]"},
		{"(1 | 1 | 2).count()", "[2]"},
		{"(1).combine(1).count()", "[2]"},
		{"(1 | 2 | 3).where($this > 1).select($this * 10)", "[20, 30]"},
		{"(1 | 2 | 3).where($index = 1)", "[2]"},
		{"(1 | 2 | 3).all($this > 0)", "[true]"},
		{"(1 | 2).exists($this > 1)", "[true]"},
		{"(1 | 2).intersect(2 | 3)", "[2]"},
		{"(1 | 2).exclude(2 | 3)", "[1]"},
		{"(1 | 2).subsetOf(1 | 2 | 3)", "[true]"},
		{"iif({}, 'a', 'b')", `["b"]`},
		{"iif(true, 'a')", `["a"]`},
		{"Observation.code.coding.children().count()", "[2]"},
		{"Observation.code.descendants().count()", "[3]"},
		{"Observation.status.hasValue()", "[true]"},
		{"Observation.code.hasValue()", "[false]"},
		// strings
		{"'abcdef'.substring(2, 3)", `["cde"]`},
		{"'abcdef'.substring(10)", "[]"},
		{"'abc'.indexOf('c')", "[2]"},
		{"'abc'.startsWith('ab') and 'abc'.endsWith('bc')", "[true]"},
		{"'a.b.c'.replace('.', '/')", `["a/b/c"]`},
		{"'abc'.replace('', '-')", `["-a-b-c-"]`},
		{"'abc123'.matches('[0-9]+')", "[true]"},
		{"'  x '.trim().length()", "[1]"},
		{"'AbC'.lower() & 'x'.upper()", `["abcX"]`},
		{"'a' & {}", `["a"]`},
		{"'a' + {}", "[]"},
		{"'a,b'.split(',').join('+')", `["a+b"]`},
		{"'héllo'.length()", "[5]"},
		{"'abc'.contains('b')", "[true]"},
		{"('a' | 'b') contains 'a'", "[true]"},
		{"'c' in ('a' | 'b')", "[false]"},
		{"(5).toString() + '!'", `["5!"]`},
		{"'12'.toInteger() + 1", "[13]"},
		{"'1.50'.toDecimal()", "[1.50]"},
		{"'2024-02-01'.toDate()", "[@2024-02-01]"},
		{"'5 mg'.toQuantity()", "[5 'mg']"},
		// arithmetic
		{"7 div 2", "[3]"},
		{"7 mod 2", "[1]"},
		{"7 / 2", "[3.5]"},
		{"5.5 div 0.7", "[7]"},
		{"5.5 mod 0.7", "[0.6]"},
		{"1 / 0", "[]"},
		{"-(1 | 2).count()", "[-2]"},
		{"-5.5.abs()", "[-5.5]"},
		{"(-5.5).abs()", "[5.5]"},
		{"1.5.round()", "[2]"},
		{"(-1.5).floor()", "[-2]"},
		// variables
		{"%resource.id", `["o1"]`},
		{"%context.status", `["final"]`},
		{"%ucum", `["http://unitsofmeasure.org"]`},
		{"%n + 1", "[42]"},
		{"%nothing.exists()", "[false]"},
		{"%`delimited name`", `["ok"]`},
		{"%current.status != %previous.status", "[true]"},
		{"%current.value > %previous.value", "[true]"},
	}
	env := &Env{Vars: map[string]any{
		"n": 41, "nothing": nil, "delimited name": "ok",
		"current":  obs,
		"previous": decode(t, `{"resourceType":"Observation","status":"preliminary","valueQuantity":{"value":5,"code":"mmol/L"}}`),
	}}
	for _, tc := range tests {
		t.Run(tc.expr, func(t *testing.T) {
			e, err := Parse(tc.expr)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			got, err := e.Evaluate(obs, env)
			if err != nil {
				t.Fatalf("Evaluate: %v", err)
			}
			if s := show(got); s != tc.want {
				t.Errorf("%s = %s, want %s", tc.expr, s, tc.want)
			}
		})
	}
}

func TestEvaluateTypes(t *testing.T) {
	obs := decode(t, testObservation)
	tests := []struct{ expr, want string }{
		{"Observation.value", "Quantity"},
		{"Observation.code.coding", "Coding"},
		{"Observation.code.coding.code", "code"},
		{"Observation.subject.resolve()", "Patient"},
		{"Observation.contained", "Practitioner"},
		{"Observation.id", TypeString},
		{"@2024", TypeDate},
		{"@2024-01-01T10:00", TypeDateTime},
		{"5 'mg'", TypeQuantity},
		{"Observation.extension.value", "string"},
		{"Observation.unknownElement", ""},
	}
	obs["unknownElement"] = map[string]any{"a": "b"}
	for _, tc := range tests {
		got, err := MustParse(tc.expr).Evaluate(obs, nil)
		if err != nil || len(got) == 0 {
			t.Errorf("%s: %v, %d items", tc.expr, err, len(got))
			continue
		}
		if got[0].Type != tc.want {
			t.Errorf("%s: type %q, want %q", tc.expr, got[0].Type, tc.want)
		}
	}
}

func TestEvaluateErrors(t *testing.T) {
	obs := decode(t, testObservation)
	tests := []struct{ expr, want string }{
		{"%undefined", "undefined variable %undefined"},
		{"Observation.performer.reference.startsWith('x')", "needs a single item"},
		{"(1 | 2) > 1", "needs single items"},
		{"'a' < 1", "cannot compare"},
		{"(1 | 2).single()", "single() got 2 items"},
		{"'x'.matches('(')", "invalid regular expression"},
		{"(1 | 2) and true", "expected a single boolean"},
		{"9223372036854775807 + 1", "integer overflow"},
	}
	for _, tc := range tests {
		_, err := MustParse(tc.expr).Evaluate(obs, nil)
		var ee *EvalError
		if !errors.As(err, &ee) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want an *EvalError containing %q", tc.expr, err, tc.want)
		}
	}
}

func TestEvaluateResolver(t *testing.T) {
	obs := decode(t, testObservation)
	env := &Env{Resolve: func(ref string) (map[string]any, bool) {
		if ref == "Patient/p1" {
			return map[string]any{"resourceType": "Patient", "id": "p1", "gender": "female"}, true
		}
		return nil, false
	}}
	got, err := MustParse("Observation.subject.resolve().gender | Observation.performer.resolve().id").Evaluate(obs, env)
	if err != nil {
		t.Fatal(err)
	}
	if s := show(got); s != `["female", "lab", "c1"]` {
		t.Errorf("got %s", s)
	}
}

func TestEvaluateBool(t *testing.T) {
	obs := decode(t, testObservation)
	tests := []struct {
		expr    string
		want    bool
		wantErr bool
	}{
		{"Observation.status = 'final'", true, false},
		{"Observation.status = 'draft'", false, false},
		{"Observation.missing", false, false},
		{"Observation.status", true, false},
		{"Observation.performer", false, true},
	}
	for _, tc := range tests {
		got, err := MustParse(tc.expr).EvaluateBool(obs, nil)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("%s = %v, %v; want %v (error %v)", tc.expr, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestEvaluateNilAndOddInput(t *testing.T) {
	e := MustParse("Patient.name.given.first() | %resource.id")
	if got, err := e.Evaluate(nil, nil); err != nil || len(got) != 0 {
		t.Errorf("nil resource: %v, %v", got, err)
	}
	odd := map[string]any{"resourceType": 5, "name": []any{nil, "x", 3.5, map[string]any{"given": "solo"}}}
	if _, err := MustParse("name.given.exists() and name.descendants().count() > 0").Evaluate(odd, nil); err != nil {
		t.Errorf("odd input: %v", err)
	}
}

func TestConcurrentEvaluate(t *testing.T) {
	obs := decode(t, testObservation)
	e := MustParse("Observation.performer.where(resolve() is Organization).reference | Observation.value.ofType(Quantity).value")
	want := show(must(e.Evaluate(obs, nil)))
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			for range 200 {
				got, err := e.Evaluate(obs, nil)
				if err != nil || show(got) != want {
					errs <- fmt.Errorf("got %s, %v", show(got), err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func must(v []Value, err error) []Value {
	if err != nil {
		panic(err)
	}
	return v
}
