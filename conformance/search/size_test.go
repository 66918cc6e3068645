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
