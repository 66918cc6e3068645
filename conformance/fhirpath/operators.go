package fhirpath

import (
	"math/big"
	"strings"
	"time"
)

// toTri converts an operand of a boolean operator: empty, one boolean, or
// one other item (which counts as true, as singleton evaluation says).
func (c *evalCtx) toTri(n *node, v []Value) (tri, error) {
	switch len(v) {
	case 0:
		return triEmpty, nil
	case 1:
		if b, ok := v[0].Data.(bool); ok {
			return triOf(b), nil
		}
		return triTrue, nil
	}
	return triEmpty, c.errorf(n, "expected a single boolean, got %d items", len(v))
}

func (c *evalCtx) binary(n *node, sc *scope) ([]Value, error) {
	left, err := c.eval(n.target, sc)
	if err != nil {
		return nil, err
	}
	right, err := c.eval(n.args[0], sc)
	if err != nil {
		return nil, err
	}
	switch n.name {
	case "|":
		if err := c.spend(n, (len(left)+len(right))*(len(left)+len(right))/2); err != nil {
			return nil, err
		}
		return distinct(append(append(make([]Value, 0, len(left)+len(right)), left...), right...)), nil
	case "and", "or", "xor", "implies":
		return c.logic(n, left, right)
	case "=":
		return collectionsEqual(left, right).values(), nil
	case "!=":
		switch collectionsEqual(left, right) {
		case triTrue:
			return triFalse.values(), nil
		case triFalse:
			return triTrue.values(), nil
		}
		return nil, nil
	case "~":
		return triOf(collectionsEquivalent(left, right)).values(), nil
	case "!~":
		return triOf(!collectionsEquivalent(left, right)).values(), nil
	case "<", ">", "<=", ">=":
		return c.compare(n, left, right)
	case "in":
		return c.membership(n, left, right)
	case "contains":
		return c.membership(n, right, left)
	case "&":
		ls, err := c.concatOperand(n, left)
		if err != nil {
			return nil, err
		}
		rs, err := c.concatOperand(n, right)
		if err != nil {
			return nil, err
		}
		if len(ls)+len(rs) > maxString {
			return nil, c.errorf(n, "string is longer than %d bytes", maxString)
		}
		return []Value{{Data: ls + rs, Type: TypeString}}, nil
	}
	return c.arithmetic(n, left, right)
}

func (c *evalCtx) logic(n *node, left, right []Value) ([]Value, error) {
	a, err := c.toTri(n.target, left)
	if err != nil {
		return nil, err
	}
	b, err := c.toTri(n.args[0], right)
	if err != nil {
		return nil, err
	}
	var r tri
	switch n.name {
	case "and":
		switch {
		case a == triFalse || b == triFalse:
			r = triFalse
		case a == triTrue && b == triTrue:
			r = triTrue
		}
	case "or":
		switch {
		case a == triTrue || b == triTrue:
			r = triTrue
		case a == triFalse && b == triFalse:
			r = triFalse
		}
	case "xor":
		if a != triEmpty && b != triEmpty {
			r = triOf(a != b)
		}
	case "implies":
		switch {
		case a == triFalse || b == triTrue:
			r = triTrue
		case a == triTrue && b == triFalse:
			r = triFalse
		}
	}
	return r.values(), nil
}

func (c *evalCtx) compare(n *node, left, right []Value) ([]Value, error) {
	if len(left) == 0 || len(right) == 0 {
		return nil, nil
	}
	if len(left) > 1 || len(right) > 1 {
		return nil, c.errorf(n, "%s needs single items, got %d and %d", n.name, len(left), len(right))
	}
	cmp, known, msg := compareItems(left[0], right[0])
	if msg != "" {
		return nil, c.errorf(n, "%s", msg)
	}
	if !known {
		return nil, nil
	}
	var r bool
	switch n.name {
	case "<":
		r = cmp < 0
	case ">":
		r = cmp > 0
	case "<=":
		r = cmp <= 0
	case ">=":
		r = cmp >= 0
	}
	return triOf(r).values(), nil
}

// membership implements `item in coll`.
func (c *evalCtx) membership(n *node, item, coll []Value) ([]Value, error) {
	if len(item) == 0 {
		return nil, nil
	}
	if len(item) > 1 {
		return nil, c.errorf(n, "%s needs a single item, got %d", n.name, len(item))
	}
	if err := c.spend(n, len(coll)); err != nil {
		return nil, err
	}
	return triOf(containsItem(coll, item[0])).values(), nil
}

func (c *evalCtx) concatOperand(n *node, v []Value) (string, error) {
	switch len(v) {
	case 0:
		return "", nil
	case 1:
		if t, x := systemValue(v[0]); t == TypeString {
			return x.(string), nil
		}
		return "", c.errorf(n, "& needs strings")
	}
	return "", c.errorf(n, "& needs single items, got %d", len(v))
}

func (c *evalCtx) arithmetic(n *node, left, right []Value) ([]Value, error) {
	if len(left) == 0 || len(right) == 0 {
		return nil, nil
	}
	if len(left) > 1 || len(right) > 1 {
		return nil, c.errorf(n, "%s needs single items, got %d and %d", n.name, len(left), len(right))
	}
	ta, xa := systemValue(left[0])
	tb, xb := systemValue(right[0])
	switch {
	case n.name == "+" && ta == TypeString && tb == TypeString:
		if len(xa.(string))+len(xb.(string)) > maxString {
			return nil, c.errorf(n, "string is longer than %d bytes", maxString)
		}
		return []Value{{Data: xa.(string) + xb.(string), Type: TypeString}}, nil
	case isTemporalType(ta) && tb == TypeQuantity && (n.name == "+" || n.name == "-"):
		r, ok := addDuration(xa.(Temporal), xb.(Quantity), n.name == "-")
		if !ok {
			return nil, c.errorf(n, "cannot add %s to a date/time", xb.(Quantity))
		}
		return []Value{{Data: r, Type: r.typeName()}}, nil
	case isNumberType(ta) && isNumberType(tb):
		return c.numeric(n, ta, xa, tb, xb)
	}
	return nil, c.errorf(n, "%s is not defined for %s and %s", n.name, describeType(left[0], ta), describeType(right[0], tb))
}

func (c *evalCtx) numeric(n *node, ta string, xa any, tb string, xb any) ([]Value, error) {
	if ta == TypeInteger && tb == TypeInteger && n.name != "/" {
		a, b := xa.(int64), xb.(int64)
		var r *big.Int
		switch n.name {
		case "+":
			r = new(big.Int).Add(big.NewInt(a), big.NewInt(b))
		case "-":
			r = new(big.Int).Sub(big.NewInt(a), big.NewInt(b))
		case "*":
			r = new(big.Int).Mul(big.NewInt(a), big.NewInt(b))
		case "div", "mod":
			if b == 0 {
				return nil, nil
			}
			q, m := new(big.Int).QuoRem(big.NewInt(a), big.NewInt(b), new(big.Int))
			r = q
			if n.name == "mod" {
				r = m
			}
		}
		if r == nil || !r.IsInt64() {
			return nil, c.errorf(n, "integer overflow")
		}
		return []Value{{Data: r.Int64(), Type: TypeInteger}}, nil
	}
	a, _ := toRat(xa)
	b, _ := toRat(xb)
	if a == nil || b == nil {
		return nil, c.errorf(n, "invalid number")
	}
	r := new(big.Rat)
	switch n.name {
	case "+":
		r.Add(a, b)
	case "-":
		r.Sub(a, b)
	case "*":
		r.Mul(a, b)
	case "/", "div", "mod":
		if b.Sign() == 0 {
			return nil, nil
		}
		r.Quo(a, b)
		if n.name == "div" || n.name == "mod" {
			q := new(big.Int).Quo(r.Num(), r.Denom())
			if n.name == "div" {
				if !q.IsInt64() {
					return nil, c.errorf(n, "integer overflow")
				}
				return []Value{{Data: q.Int64(), Type: TypeInteger}}, nil
			}
			r.Sub(a, new(big.Rat).Mul(new(big.Rat).SetInt(q), b))
		}
	}
	return []Value{{Data: ratToDecimal(r), Type: TypeDecimal}}, nil
}

// addDuration adds (or subtracts) a calendar duration to a date/time.
func addDuration(t Temporal, q Quantity, sub bool) (Temporal, bool) {
	r, ok := new(big.Rat).SetString(string(q.Value))
	if !ok || !r.IsInt() || !r.Num().IsInt64() {
		return t, false
	}
	v := int(r.Num().Int64())
	if v > 1e6 || v < -1e6 {
		return t, false
	}
	if sub {
		v = -v
	}
	unit := q.Unit
	if u := calendarUnits[unit]; u != "" {
		unit = u
	}
	base := time.Date(t.Year, time.Month(max(t.Month, 1)), max(t.Day, 1), t.Hour, t.Minute, t.Second, t.Nano, time.UTC)
	switch unit {
	case "a":
		base = base.AddDate(v, 0, 0)
	case "mo":
		base = base.AddDate(0, v, 0)
	case "wk":
		base = base.AddDate(0, 0, 7*v)
	case "d":
		base = base.AddDate(0, 0, v)
	case "h":
		base = base.Add(time.Duration(v) * time.Hour)
	case "min":
		base = base.Add(time.Duration(v) * time.Minute)
	case "s":
		base = base.Add(time.Duration(v) * time.Second)
	case "ms":
		base = base.Add(time.Duration(v) * time.Millisecond)
	default:
		return t, false
	}
	out := t
	out.Year, out.Month, out.Day = base.Year(), int(base.Month()), base.Day()
	out.Hour, out.Minute, out.Second, out.Nano = base.Hour(), base.Minute(), base.Second(), base.Nanosecond()
	out.text = formatTemporal(out)
	return out, true
}

// formatTemporal writes t at its precision.
func formatTemporal(t Temporal) string {
	var b strings.Builder
	pad := func(v, n int) {
		s := itoa(v)
		for i := len(s); i < n; i++ {
			b.WriteByte('0')
		}
		b.WriteString(s)
	}
	if t.Kind != KindTime {
		pad(t.Year, 4)
		if t.Prec >= precMonth {
			b.WriteByte('-')
			pad(t.Month, 2)
		}
		if t.Prec >= precDay {
			b.WriteByte('-')
			pad(t.Day, 2)
		}
	}
	if t.Prec >= precHour {
		b.WriteByte('T')
		pad(t.Hour, 2)
		if t.Prec >= precMinute {
			b.WriteByte(':')
			pad(t.Minute, 2)
		}
		if t.Prec >= precSecond {
			b.WriteByte(':')
			pad(t.Second, 2)
			if t.Nano > 0 {
				b.WriteByte('.')
				pad(t.Nano/1e6, 3)
			}
		}
		if t.HasTZ && t.Kind != KindTime {
			if t.TZ == 0 {
				b.WriteByte('Z')
			} else {
				tz := t.TZ
				if tz < 0 {
					b.WriteByte('-')
					tz = -tz
				} else {
					b.WriteByte('+')
				}
				pad(tz/60, 2)
				b.WriteByte(':')
				pad(tz%60, 2)
			}
		}
	}
	return b.String()
}

func itoa(v int) string { return big.NewInt(int64(v)).String() }

// typeOperator implements `is`, `as`, is() and as().
func typeOperator(c *evalCtx, n *node, op, ns, name string, in []Value) ([]Value, error) {
	if len(in) == 0 {
		return nil, nil
	}
	if op == "is" {
		if len(in) > 1 {
			return nil, c.errorf(n, "is needs a single item, got %d", len(in))
		}
		return triOf(typeMatches(in[0], ns, name)).values(), nil
	}
	// as: lenient like fhirpath.js, it filters a collection of several items
	var out []Value
	for _, it := range in {
		if typeMatches(it, ns, name) {
			out = append(out, it)
		}
	}
	return out, nil
}
