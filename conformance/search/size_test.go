package search

import (
	"testing"
	"unsafe"
)

// TestQueryStaysSmall guards the size of a Query: every subscription keeps
// the Query of its criteria or each of its filters for its lifetime, so the
// result parameters, which those never have, live behind a pointer.
func TestQueryStaysSmall(t *testing.T) {
	if n := unsafe.Sizeof(Query{}); n > 80 {
		t.Errorf("a Query is %d bytes, want at most 80", n)
	}
	if n := unsafe.Sizeof(clause{}); n > 80 {
		t.Errorf("a clause is %d bytes, want at most 80", n)
	}
	if n := unsafe.Sizeof(value{}); n > 144 {
		t.Errorf("a value is %d bytes, want at most 144", n)
	}
	q, err := ParseCriteria("Observation?patient=Patient/1&code=1234-5")
	if err != nil {
		t.Fatal(err)
	}
	if q.shape != nil || q.Shape().AltersResult() || len(q.Shape().Sort) > 0 {
		t.Errorf("a query without result parameters has a shape: %+v", q.shape)
	}
	q, err = ParseCriteria("Observation?patient=Patient/1&_sort=-date")
	if err != nil {
		t.Fatal(err)
	}
	if q.Shape().AltersResult() || len(q.Shape().Sort) != 1 {
		t.Errorf("_sort alone: shape %+v, want one sort key that does not alter the result", q.shape)
	}
}

// TestClausesShareRaw: the names and values a Query's clauses keep are
// read back from its canonical parameters, and its Type is its own, not
// pieces of the caller's strings, so a subscription keeps its parameters
// once; the canonical form leaves a reference or a token as written and
// escapes what separates.
func TestClausesShareRaw(t *testing.T) {
	given := "patient=Patient/p-1&code=http://loinc.org|1234-5"
	criteria := "Observation?" + given
	q, err := ParseCriteria(criteria)
	if err != nil {
		t.Fatal(err)
	}
	if c, ty := uintptr(unsafe.Pointer(unsafe.StringData(criteria))), uintptr(unsafe.Pointer(unsafe.StringData(q.Type))); ty >= c && ty < c+uintptr(len(criteria)) {
		t.Error("the Query's Type is a piece of the criteria string, which it keeps alive")
	}
	if want := "Observation?code=http://loinc.org|1234-5&patient=Patient/p-1"; q.String() != want {
		t.Errorf("String() = %q, want %q", q.String(), want)
	}
	lo := uintptr(unsafe.Pointer(unsafe.StringData(q.raw)))
	within := func(s string) bool {
		p := uintptr(unsafe.Pointer(unsafe.StringData(s)))
		return p >= lo && p+uintptr(len(s)) <= lo+uintptr(len(q.raw))
	}
	for _, c := range q.clauses {
		if !within(c.name) {
			t.Errorf("clause name %q is not read from raw", c.name)
		}
		for _, v := range c.values {
			for _, s := range []string{v.exact, v.code, v.system} {
				if s != "" && !within(s) {
					t.Errorf("clause %s keeps %q apart from raw", c.name, s)
				}
			}
		}
	}
	q, err = ParseCriteria("Observation?code=a%26b%3Dc%2Bd%25e%3Bf%23g%20h")
	if err != nil {
		t.Fatal(err)
	}
	if want := "Observation?code=a%26b%3Dc%2Bd%25e%3Bf%23g%20h"; q.String() != want {
		t.Errorf("String() = %q, want %q (separators escaped)", q.String(), want)
	}
	if got := q.clauses[0].values[0].code; got != "a&b=c+d%e;f#g h" {
		t.Errorf("code read back as %q", got)
	}
}
