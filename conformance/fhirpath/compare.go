package fhirpath

import (
	"encoding/json"
	"math/big"
	"strings"
)

// tri is a three-valued boolean: empty (unknown), false or true.
type tri int8

const (
	triEmpty tri = iota
	triFalse
	triTrue
)

func triOf(b bool) tri {
	if b {
		return triTrue
	}
	return triFalse
}

func (t tri) values() []Value {
	if t == triEmpty {
		return nil
	}
	return []Value{{Data: t == triTrue, Type: TypeBoolean}}
}

// itemsEqual implements = on two items; known is false when the result is
// empty (dates of different precision, quantities of unrelated units).
func itemsEqual(a, b Value) (eq, known bool) {
	ta, xa := systemValue(a)
	tb, xb := systemValue(b)
	switch {
	case ta == "" && tb == "":
		return jsonEqual(a.Data, b.Data, false), true
	case isNumberType(ta) && isNumberType(tb):
		ra, ok1 := toRat(xa)
		rb, ok2 := toRat(xb)
		return ok1 && ok2 && ra.Cmp(rb) == 0, true
	case isTemporalType(ta) && isTemporalType(tb):
		c, ok := compareTemporal(xa.(Temporal), xb.(Temporal))
		return c == 0, ok
	case ta == TypeQuantity && tb == TypeQuantity:
		c, ok := compareQuantity(xa.(Quantity), xb.(Quantity), false)
		return c == 0, ok
	case ta != tb:
		return false, true
	}
	return xa == xb, true
}

// itemsEquivalent implements ~ on two items.
func itemsEquivalent(a, b Value) bool {
	ta, xa := systemValue(a)
	tb, xb := systemValue(b)
	switch {
	case ta == "" && tb == "":
		return jsonEqual(a.Data, b.Data, true)
	case ta == TypeString && tb == TypeString:
		return normaliseSpace(xa.(string)) == normaliseSpace(xb.(string))
	case isNumberType(ta) && isNumberType(tb):
		return decimalsEquivalent(xa, xb)
	case isTemporalType(ta) && isTemporalType(tb):
		c, ok := compareTemporal(xa.(Temporal), xb.(Temporal))
		return ok && c == 0
	case ta == TypeQuantity && tb == TypeQuantity:
		c, ok := compareQuantity(xa.(Quantity), xb.(Quantity), true)
		return ok && c == 0
	case ta != tb:
		return false
	}
	return xa == xb
}

func isNumberType(t string) bool   { return t == TypeInteger || t == TypeDecimal }
func isTemporalType(t string) bool { return t == TypeDate || t == TypeDateTime || t == TypeTime }

// normaliseSpace prepares a string for ~: case is ignored and every
// whitespace character counts as a space (runs are not collapsed).
func normaliseSpace(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '\t', '\n', '\r', '\f', '\v':
			return ' '
		}
		return r
	}, strings.ToLower(s))
}

// decimalsEquivalent compares two numbers rounded to the precision of the
// less precise one.
func decimalsEquivalent(a, b any) bool {
	ra, ok1 := toRat(a)
	rb, ok2 := toRat(b)
	if !ok1 || !ok2 {
		return false
	}
	pa, pb := 0, 0
	if n, ok := a.(json.Number); ok {
		pa = decimalPlaces(n)
	}
	if n, ok := b.(json.Number); ok {
		pb = decimalPlaces(n)
	}
	p := min(pa, pb)
	return ra.FloatString(p) == rb.FloatString(p)
}

// compareQuantity compares two quantities of the same (or an equal
// calendar/UCUM) unit. ok is false for different units.
func compareQuantity(a, b Quantity, equivalence bool) (int, bool) {
	ua, ub := a.Unit, b.Unit
	if ua != ub {
		ca, cb := calendarUnits[ua], calendarUnits[ub]
		definite := func(u string) bool { return u != "a" && u != "mo" }
		switch {
		case ca != "" && cb != "" && ca == cb:
		case ca != "" && cb == "" && ca == ub && (equivalence || definite(ca)):
		case cb != "" && ca == "" && cb == ua && (equivalence || definite(cb)):
		default:
			return 0, false
		}
	}
	ra, ok1 := toRat(a.Value)
	rb, ok2 := toRat(b.Value)
	if !ok1 || !ok2 {
		return 0, false
	}
	return ra.Cmp(rb), true
}

// jsonEqual compares two decoded JSON values; numbers compare by value.
// With equivalence, strings compare as ~ does.
func jsonEqual(a, b any, equivalence bool) bool {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok || !jsonEqual(v, w, equivalence) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !jsonEqual(x[i], y[i], equivalence) {
				return false
			}
		}
		return true
	case json.Number:
		y, ok := b.(json.Number)
		if !ok {
			return false
		}
		ra, ok1 := new(big.Rat).SetString(string(x))
		rb, ok2 := new(big.Rat).SetString(string(y))
		return ok1 && ok2 && ra.Cmp(rb) == 0
	case string:
		y, ok := b.(string)
		if equivalence {
			return ok && normaliseSpace(x) == normaliseSpace(y)
		}
		return ok && x == y
	}
	return a == b
}

// collectionsEqual implements = on two collections.
func collectionsEqual(a, b []Value) tri {
	if len(a) == 0 || len(b) == 0 {
		return triEmpty
	}
	if len(a) != len(b) {
		return triFalse
	}
	for i := range a {
		eq, known := itemsEqual(a[i], b[i])
		if !known {
			return triEmpty
		}
		if !eq {
			return triFalse
		}
	}
	return triTrue
}

// collectionsEquivalent implements ~ on two collections (order does not
// matter; two empty collections are equivalent).
func collectionsEquivalent(a, b []Value) bool {
	if len(a) != len(b) {
		return false
	}
	used := make([]bool, len(b))
outer:
	for _, x := range a {
		for j, y := range b {
			if !used[j] && itemsEquivalent(x, y) {
				used[j] = true
				continue outer
			}
		}
		return false
	}
	return true
}

// compareItems implements < > <= >= on two items: cmp and known, or an
// error message for incomparable operands.
func compareItems(a, b Value) (int, bool, string) {
	ta, xa := systemValue(a)
	tb, xb := systemValue(b)
	switch {
	case isNumberType(ta) && isNumberType(tb):
		ra, ok1 := toRat(xa)
		rb, ok2 := toRat(xb)
		if !ok1 || !ok2 {
			return 0, false, ""
		}
		return ra.Cmp(rb), true, ""
	case ta == TypeString && tb == TypeString:
		return strings.Compare(xa.(string), xb.(string)), true, ""
	case isTemporalType(ta) && isTemporalType(tb):
		if (ta == TypeTime) != (tb == TypeTime) {
			return 0, false, "cannot compare a time with a date"
		}
		c, ok := compareTemporal(xa.(Temporal), xb.(Temporal))
		return c, ok, ""
	case ta == TypeQuantity && tb == TypeQuantity:
		c, ok := compareQuantity(xa.(Quantity), xb.(Quantity), false)
		return c, ok, ""
	}
	return 0, false, "cannot compare " + describeType(a, ta) + " with " + describeType(b, tb)
}

func describeType(v Value, sys string) string {
	switch {
	case v.Type != "":
		return v.Type
	case sys != "":
		return sys
	}
	return "an element of unknown type"
}

// contains reports whether coll has an item equal to v.
func containsItem(coll []Value, v Value) bool {
	for _, x := range coll {
		if eq, known := itemsEqual(x, v); known && eq {
			return true
		}
	}
	return false
}

// distinct removes items equal to an earlier one.
func distinct(in []Value) []Value {
	if len(in) < 2 {
		return in
	}
	out := make([]Value, 0, len(in))
	for _, v := range in {
		if !containsItem(out, v) {
			out = append(out, v)
		}
	}
	return out
}
