package search

import (
	"encoding/json"
	"errors"
	"math"
	"math/big"
	"strconv"
	"strings"
)

// decimal is a search number: its exact value and the half-open range
// [lo, hi) its written precision implies ("100" covers [99.5, 100.5)).
type decimal struct {
	v, lo, hi *big.Rat
}

var errBadNumber = errors.New("not a decimal number")

// parseDecimal parses a FHIR decimal, optionally with an exponent
// ("1.5e3"), keeping its precision.
func parseDecimal(s string) (decimal, error) {
	v, fracDigits, exp, err := parseRat(s)
	if err != nil {
		return decimal{}, err
	}
	// Half a unit of the last written digit: 5 × 10^(exp - fracDigits - 1).
	half := pow10(exp - fracDigits - 1)
	half.Mul(half, big.NewRat(5, 1))
	lo := new(big.Rat).Sub(v, half)
	hi := new(big.Rat).Add(v, half)
	return decimal{v: v, lo: lo, hi: hi}, nil
}

// parseRat validates the decimal grammar (big.Rat alone would accept
// fractions and hex) and returns the value, the number of digits after the
// point and the exponent.
func parseRat(s string) (v *big.Rat, fracDigits, exp int, err error) {
	i := 0
	if i < len(s) && (s[i] == '-' || s[i] == '+') {
		i++
	}
	intStart := i
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	intDigits := i - intStart
	if i < len(s) && s[i] == '.' {
		i++
		fs := i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		fracDigits = i - fs
		if fracDigits == 0 {
			return nil, 0, 0, errBadNumber
		}
	}
	if intDigits == 0 && fracDigits == 0 {
		return nil, 0, 0, errBadNumber
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		e, convErr := strconv.Atoi(s[i+1:])
		if convErr != nil || e > 400 || e < -400 {
			return nil, 0, 0, errBadNumber
		}
		exp = e
		i = len(s)
	}
	if i != len(s) {
		return nil, 0, 0, errBadNumber
	}
	v, ok := new(big.Rat).SetString(s)
	if !ok {
		return nil, 0, 0, errBadNumber
	}
	return v, fracDigits, exp, nil
}

func pow10(n int) *big.Rat {
	p := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(abs(n))), nil)
	if n >= 0 {
		return new(big.Rat).SetInt(p)
	}
	return new(big.Rat).SetFrac(big.NewInt(1), p)
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// ratOf converts a decoded JSON number (json.Number, float64, int) to a
// rational; ok is false for anything else.
func ratOf(x any) (*big.Rat, bool) {
	var s string
	switch n := x.(type) {
	case json.Number:
		s = string(n)
	case float64:
		if isNaNOrInf(n) {
			return nil, false
		}
		return new(big.Rat).SetFloat64(n), true
	case int:
		return new(big.Rat).SetInt64(int64(n)), true
	case int64:
		return new(big.Rat).SetInt64(n), true
	case string:
		s = strings.TrimSpace(n)
	default:
		return nil, false
	}
	v, _, _, err := parseRat(s)
	return v, err == nil
}

func isNaNOrInf(f float64) bool { return math.IsNaN(f) || math.IsInf(f, 0) }

// matchNumber applies a search prefix to a resource value t and a search
// number d. Resource values are points; eq and ne use the implicit range
// of the search value, ap allows 10% of the value.
func matchNumber(prefix string, t *big.Rat, d decimal) bool {
	switch prefix {
	case "", "eq":
		return t.Cmp(d.lo) >= 0 && t.Cmp(d.hi) < 0
	case "ne":
		return t.Cmp(d.lo) < 0 || t.Cmp(d.hi) >= 0
	case "gt", "sa":
		return t.Cmp(d.v) > 0
	case "lt", "eb":
		return t.Cmp(d.v) < 0
	case "ge":
		return t.Cmp(d.v) >= 0
	case "le":
		return t.Cmp(d.v) <= 0
	case "ap":
		tol := new(big.Rat).Abs(d.v)
		tol.Mul(tol, big.NewRat(1, 10))
		if half := new(big.Rat).Sub(d.hi, d.v); half.Cmp(tol) > 0 {
			tol = half
		}
		diff := new(big.Rat).Sub(t, d.v)
		return diff.Abs(diff).Cmp(tol) <= 0
	}
	return false
}
