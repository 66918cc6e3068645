package search

import (
	"math/big"
	"testing"
	"time"
)

func TestParseSpan(t *testing.T) {
	utc := func(s string) int64 {
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return micros(tm)
	}
	tests := []struct {
		in     string
		lo, hi string
	}{
		{"2024", "2024-01-01T00:00:00Z", "2025-01-01T00:00:00Z"},
		{"2024-02", "2024-02-01T00:00:00Z", "2024-03-01T00:00:00Z"},
		{"2024-12", "2024-12-01T00:00:00Z", "2025-01-01T00:00:00Z"},
		{"2024-02-29", "2024-02-29T00:00:00Z", "2024-03-01T00:00:00Z"},
		{"2024-03-01T10:15", "2024-03-01T10:15:00Z", "2024-03-01T10:16:00Z"},
		{"2024-03-01T10:15:30Z", "2024-03-01T10:15:30Z", "2024-03-01T10:15:31Z"},
		{"2024-03-01T10:15:30.1Z", "2024-03-01T10:15:30.1Z", "2024-03-01T10:15:30.2Z"},
		{"2024-03-01T10:15:30.123+01:00", "2024-03-01T09:15:30.123Z", "2024-03-01T09:15:30.124Z"},
		{"2024-03-01T10:15:30.1234567-05:30", "2024-03-01T15:45:30.123456Z", "2024-03-01T15:45:30.123457Z"},
		{"0001", "0001-01-01T00:00:00Z", "0002-01-01T00:00:00Z"},
	}
	for _, tc := range tests {
		got, err := parseSpan(tc.in)
		if err != nil {
			t.Errorf("parseSpan(%q): %v", tc.in, err)
			continue
		}
		if want := (span{utc(tc.lo), utc(tc.hi)}); got != want {
			t.Errorf("parseSpan(%q) = %v, want %v", tc.in, got, want)
		}
	}
	for _, bad := range []string{"", "24", "2024-1", "2024-00", "2024-02-30", "2024-03-01T", "2024-03-01T25:00",
		"2024-03-01T10:15:30.Z", "2024-03-01T10:15:30+1:00", "2024-03-01T10:15:30Z ", "0000", "2024/03/01", "２０２４"} {
		if _, err := parseSpan(bad); err == nil {
			t.Errorf("parseSpan(%q) accepted", bad)
		}
	}
}

func TestParseDecimal(t *testing.T) {
	tests := []struct{ in, lo, hi string }{
		{"100", "99.5", "100.5"},
		{"100.00", "99.995", "100.005"},
		{"0.1", "0.05", "0.15"},
		{"-2", "-2.5", "-1.5"},
		{"1e2", "50", "150"},
		{"1.5E-1", "0.145", "0.155"},
	}
	for _, tc := range tests {
		d, err := parseDecimal(tc.in)
		if err != nil {
			t.Fatalf("parseDecimal(%q): %v", tc.in, err)
		}
		lo, _ := new(big.Rat).SetString(tc.lo)
		hi, _ := new(big.Rat).SetString(tc.hi)
		if d.lo.Cmp(lo) != 0 || d.hi.Cmp(hi) != 0 {
			t.Errorf("parseDecimal(%q) range = [%s, %s), want [%s, %s)", tc.in, d.lo.FloatString(4), d.hi.FloatString(4), tc.lo, tc.hi)
		}
	}
	for _, bad := range []string{"", ".", "1.", "1/2", "0x10", "1e", "1e999", "--1", "1,5", "Inf", "NaN", " 1"} {
		if _, err := parseDecimal(bad); err == nil {
			t.Errorf("parseDecimal(%q) accepted", bad)
		}
	}
}

func TestNormalize(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Amélie", "amelie"},
		{"  DUPONT-Lefèvre ", "dupont-lefevre"},
		{"Besançon", "besancon"},
		{"Åsa  Øberg", "asa øberg"},
		{"Zoë\tO'Neil", "zoe o'neil"},
	}
	for _, tc := range tests {
		if got := normalize(tc.in); got != tc.want {
			t.Errorf("normalize(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestParseRef(t *testing.T) {
	tests := []struct{ in, key, typ, id string }{
		{"Patient/1", "Patient/1", "Patient", "1"},
		{"Patient/1/_history/3", "Patient/1", "Patient", "1"},
		{"https://x.org/fhir/Patient/a-b.c", "Patient/a-b.c", "Patient", "a-b.c"},
		{"https://x.org/fhir/Patient/1/_history/2", "Patient/1", "Patient", "1"},
		{"urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0", "urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0", "", ""},
		{"http://hl7.org/fhir/Questionnaire/phq-9|1.0", "Questionnaire/phq-9", "Questionnaire", "phq-9"},
		{"http://example.org/fhir/ValueSet", "http://example.org/fhir/ValueSet", "", ""},
		{"Foo/1", "Foo/1", "", ""},
		{"#contained", "", "", ""},
		{"", "", "", ""},
	}
	for _, tc := range tests {
		if got := parseRef(tc.in); got != (refValue{tc.key, tc.typ, tc.id}) {
			t.Errorf("parseRef(%q) = %+v, want {%s %s %s}", tc.in, got, tc.key, tc.typ, tc.id)
		}
	}
}
