package fhirpath

import (
	"encoding/json"
	"math/big"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func strResult(s string) []Value { return []Value{{Data: s, Type: TypeString}} }

// stringInput returns the single input string of a string function; ok is
// false for an empty input.
func (c *evalCtx) stringInput(n *node, in []Value) (string, bool, error) {
	v, ok, err := c.singleton(n, in)
	if err != nil || !ok {
		return "", false, err
	}
	if t, x := systemValue(v); t == TypeString {
		return x.(string), true, nil
	}
	return "", false, c.errorf(n, "%s() needs a string input", n.name)
}

// stringFunc registers a function of one input string and string
// arguments (an empty argument gives an empty result).
func stringFunc(name string, nargs int, f func(s string, args []string) []Value) {
	register(name, nargs, nargs, func(c *evalCtx, n *node, in []Value, sc *scope) ([]Value, error) {
		s, ok, err := c.stringInput(n, in)
		if err != nil || !ok {
			return nil, err
		}
		args := make([]string, nargs)
		for i := range nargs {
			a, ok, err := c.singletonString(n.args[i], sc)
			if err != nil || !ok {
				return nil, err
			}
			args[i] = a
		}
		out := f(s, args)
		for _, v := range out {
			if str, ok := v.Data.(string); ok && len(str) > maxString {
				return nil, c.errorf(n, "%s() result is longer than %d bytes", n.name, maxString)
			}
		}
		return out, nil
	})
}

// maxString bounds the length of a string built by an expression.
const maxString = 1 << 20

// regexCache keeps compiled patterns of matches() and replaceMatches().
var regexCache sync.Map

func compileRegex(p string) (*regexp.Regexp, error) {
	if r, ok := regexCache.Load(p); ok {
		return r.(*regexp.Regexp), nil
	}
	r, err := regexp.Compile(p)
	if err != nil {
		return nil, err
	}
	regexCache.Store(p, r)
	return r, nil
}

func init() {
	stringFunc("startsWith", 1, func(s string, a []string) []Value { return boolResult(strings.HasPrefix(s, a[0])) })
	stringFunc("endsWith", 1, func(s string, a []string) []Value { return boolResult(strings.HasSuffix(s, a[0])) })
	stringFunc("contains", 1, func(s string, a []string) []Value { return boolResult(strings.Contains(s, a[0])) })
	stringFunc("upper", 0, func(s string, _ []string) []Value { return strResult(strings.ToUpper(s)) })
	stringFunc("lower", 0, func(s string, _ []string) []Value { return strResult(strings.ToLower(s)) })
	stringFunc("trim", 0, func(s string, _ []string) []Value { return strResult(strings.TrimSpace(s)) })
	stringFunc("length", 0, func(s string, _ []string) []Value { return intResult(utf8.RuneCountInString(s)) })
	stringFunc("toChars", 0, func(s string, _ []string) []Value {
		var out []Value
		for _, r := range s {
			out = append(out, Value{Data: string(r), Type: TypeString})
		}
		return out
	})
	stringFunc("indexOf", 1, func(s string, a []string) []Value {
		i := strings.Index(s, a[0])
		if i > 0 {
			i = utf8.RuneCountInString(s[:i])
		}
		return intResult(i)
	})
	stringFunc("replace", 2, func(s string, a []string) []Value {
		if a[0] == "" {
			// every position between characters, as the specification says
			var b strings.Builder
			b.WriteString(a[1])
			for _, r := range s {
				b.WriteRune(r)
				b.WriteString(a[1])
			}
			return strResult(b.String())
		}
		return strResult(strings.ReplaceAll(s, a[0], a[1]))
	})
	stringFunc("split", 1, func(s string, a []string) []Value {
		var out []Value
		for _, p := range strings.Split(s, a[0]) {
			out = append(out, Value{Data: p, Type: TypeString})
		}
		return out
	})
	register("matches", 1, 1, func(c *evalCtx, n *node, in []Value, sc *scope) ([]Value, error) {
		s, ok, err := c.stringInput(n, in)
		if err != nil || !ok {
			return nil, err
		}
		p, ok, err := c.singletonString(n.args[0], sc)
		if err != nil || !ok {
			return nil, err
		}
		r, err := compileRegex("(?s)" + p)
		if err != nil {
			return nil, c.errorf(n, "invalid regular expression: %v", err)
		}
		return boolResult(r.MatchString(s)), nil
	})
	register("replaceMatches", 2, 2, func(c *evalCtx, n *node, in []Value, sc *scope) ([]Value, error) {
		s, ok, err := c.stringInput(n, in)
		if err != nil || !ok {
			return nil, err
		}
		p, ok, err := c.singletonString(n.args[0], sc)
		if err != nil || !ok {
			return nil, err
		}
		repl, ok, err := c.singletonString(n.args[1], sc)
		if err != nil || !ok {
			return nil, err
		}
		r, err := compileRegex(p)
		if err != nil {
			return nil, c.errorf(n, "invalid regular expression: %v", err)
		}
		if len(s)*(len(repl)+1) > maxString {
			return nil, c.errorf(n, "replaceMatches() result may be longer than %d bytes", maxString)
		}
		return strResult(r.ReplaceAllString(s, repl)), nil
	})
	register("substring", 1, 2, func(c *evalCtx, n *node, in []Value, sc *scope) ([]Value, error) {
		s, ok, err := c.stringInput(n, in)
		if err != nil || !ok {
			return nil, err
		}
		start, err := c.singletonInt(n.args[0], sc)
		if err != nil || start == nil {
			return nil, err
		}
		runes := []rune(s)
		if *start < 0 || *start >= int64(len(runes)) {
			return nil, nil
		}
		end := int64(len(runes))
		if len(n.args) == 2 {
			l, err := c.singletonInt(n.args[1], sc)
			if err != nil {
				return nil, err
			}
			if l != nil {
				end = min(end, *start+max(*l, 0))
			}
		}
		return strResult(string(runes[*start:end])), nil
	})
	register("join", 0, 1, func(c *evalCtx, n *node, in []Value, sc *scope) ([]Value, error) {
		sep := ""
		if len(n.args) == 1 {
			s, _, err := c.singletonString(n.args[0], sc)
			if err != nil {
				return nil, err
			}
			sep = s
		}
		parts := make([]string, 0, len(in))
		for _, v := range in {
			t, x := systemValue(v)
			if t != TypeString {
				return nil, c.errorf(n, "join() needs strings")
			}
			parts = append(parts, x.(string))
		}
		if len(parts)*len(sep) > maxString {
			return nil, c.errorf(n, "join() result is too long")
		}
		res := strings.Join(parts, sep)
		if len(res) > maxString {
			return nil, c.errorf(n, "join() result is too long")
		}
		return strResult(res), nil
	})
	registerConversions()
}

// toStringValue converts one item to its string form (toString()).
func toStringValue(v Value) (string, bool) {
	t, x := systemValue(v)
	switch t {
	case TypeString:
		return x.(string), true
	case TypeBoolean:
		return strconv.FormatBool(x.(bool)), true
	case TypeInteger:
		return strconv.FormatInt(x.(int64), 10), true
	case TypeDecimal:
		return string(x.(json.Number)), true
	case TypeDate, TypeDateTime, TypeTime:
		return x.(Temporal).String(), true
	case TypeQuantity:
		return x.(Quantity).String(), true
	}
	return "", false
}

func registerConversions() {
	conv := func(name string, f func(v Value) (Value, bool)) {
		register("to"+name, 0, 0, func(c *evalCtx, n *node, in []Value, sc *scope) ([]Value, error) {
			v, ok, err := c.singleton(n, in)
			if err != nil || !ok {
				return nil, err
			}
			if r, ok := f(v); ok {
				return []Value{r}, nil
			}
			return nil, nil
		})
		register("convertsTo"+name, 0, 0, func(c *evalCtx, n *node, in []Value, sc *scope) ([]Value, error) {
			v, ok, err := c.singleton(n, in)
			if err != nil || !ok {
				return nil, err
			}
			_, ok = f(v)
			return boolResult(ok), nil
		})
	}
	conv("String", func(v Value) (Value, bool) {
		s, ok := toStringValue(v)
		return Value{Data: s, Type: TypeString}, ok
	})
	conv("Boolean", func(v Value) (Value, bool) {
		t, x := systemValue(v)
		switch t {
		case TypeBoolean:
			return Value{Data: x, Type: TypeBoolean}, true
		case TypeString:
			switch strings.ToLower(x.(string)) {
			case "true", "t", "yes", "y", "1", "1.0":
				return Value{Data: true, Type: TypeBoolean}, true
			case "false", "f", "no", "n", "0", "0.0":
				return Value{Data: false, Type: TypeBoolean}, true
			}
		case TypeInteger:
			if i := x.(int64); i == 0 || i == 1 {
				return Value{Data: i == 1, Type: TypeBoolean}, true
			}
		}
		return Value{}, false
	})
	conv("Integer", func(v Value) (Value, bool) {
		t, x := systemValue(v)
		switch t {
		case TypeInteger:
			return Value{Data: x, Type: TypeInteger}, true
		case TypeBoolean:
			return Value{Data: map[bool]int64{false: 0, true: 1}[x.(bool)], Type: TypeInteger}, true
		case TypeString:
			if i, err := strconv.ParseInt(x.(string), 10, 64); err == nil {
				return Value{Data: i, Type: TypeInteger}, true
			}
		}
		return Value{}, false
	})
	conv("Decimal", func(v Value) (Value, bool) {
		t, x := systemValue(v)
		switch t {
		case TypeInteger:
			return Value{Data: json.Number(strconv.FormatInt(x.(int64), 10)), Type: TypeDecimal}, true
		case TypeDecimal:
			return Value{Data: x, Type: TypeDecimal}, true
		case TypeBoolean:
			return Value{Data: json.Number(map[bool]string{false: "0", true: "1"}[x.(bool)]), Type: TypeDecimal}, true
		case TypeString:
			s := x.(string)
			if decimalRE.MatchString(s) {
				return Value{Data: json.Number(strings.TrimPrefix(s, "+")), Type: TypeDecimal}, true
			}
		}
		return Value{}, false
	})
	temporal := func(name string, kind TemporalKind) {
		conv(name, func(v Value) (Value, bool) {
			t, x := systemValue(v)
			var tv Temporal
			switch t {
			case TypeString:
				var ok bool
				if tv, ok = parseTemporal(x.(string), kind == KindDateTime); !ok {
					return Value{}, false
				}
			case TypeDate, TypeDateTime, TypeTime:
				tv = x.(Temporal)
			default:
				return Value{}, false
			}
			switch {
			case kind == KindTime && tv.Kind != KindTime, kind != KindTime && tv.Kind == KindTime:
				return Value{}, false
			case kind == KindDate && tv.Kind == KindDateTime:
				tv.Kind, tv.Prec, tv.HasTZ = KindDate, min(tv.Prec, precDay), false
				tv.text = formatTemporal(tv)
			case kind == KindDateTime && tv.Kind == KindDate:
				tv.Kind = KindDateTime
			}
			return Value{Data: tv, Type: tv.typeName()}, true
		})
	}
	temporal("Date", KindDate)
	temporal("DateTime", KindDateTime)
	temporal("Time", KindTime)
	functions["toQuantity"] = &funcDef{minArgs: 0, maxArgs: 1, call: func(c *evalCtx, n *node, in []Value, sc *scope) ([]Value, error) {
		v, ok, err := c.singleton(n, in)
		if err != nil || !ok {
			return nil, err
		}
		t, x := systemValue(v)
		switch t {
		case TypeQuantity:
			return []Value{{Data: x, Type: TypeQuantity}}, nil
		case TypeInteger, TypeDecimal:
			s, _ := toStringValue(Value{Data: x, Type: t})
			return []Value{{Data: Quantity{Value: json.Number(s), Unit: "1"}, Type: TypeQuantity}}, nil
		case TypeString:
			if m := quantityRE.FindStringSubmatch(strings.TrimSpace(x.(string))); m != nil {
				unit := m[2]
				if unit == "" {
					unit = m[3]
				}
				if unit == "" {
					unit = "1"
				}
				return []Value{{Data: Quantity{Value: json.Number(m[1]), Unit: unit}, Type: TypeQuantity}}, nil
			}
		}
		return nil, nil
	}}
	register("now", 0, 0, func(c *evalCtx, n *node, in []Value, sc *scope) ([]Value, error) {
		tv, _ := parseTemporal(time.Now().UTC().Format("2006-01-02T15:04:05.000Z07:00"), true)
		return []Value{{Data: tv, Type: TypeDateTime}}, nil
	})
	register("today", 0, 0, func(c *evalCtx, n *node, in []Value, sc *scope) ([]Value, error) {
		tv, _ := parseTemporal(time.Now().UTC().Format("2006-01-02"), false)
		return []Value{{Data: tv, Type: TypeDate}}, nil
	})
	for _, name := range []string{"abs", "ceiling", "floor", "round", "truncate"} {
		maxArgs := 0
		if name == "round" {
			maxArgs = 1
		}
		register(name, 0, maxArgs, mathFunc)
	}
}

var (
	decimalRE  = regexp.MustCompile(`^[+-]?\d+(\.\d+)?$`)
	quantityRE = regexp.MustCompile(`^([+-]?\d+(?:\.\d+)?)\s*(?:'([^']+)'|([a-z]+))?$`)
)

func mathFunc(c *evalCtx, n *node, in []Value, sc *scope) ([]Value, error) {
	v, ok, err := c.singleton(n, in)
	if err != nil || !ok {
		return nil, err
	}
	t, x := systemValue(v)
	if !isNumberType(t) {
		return nil, c.errorf(n, "%s() needs a number", n.name)
	}
	r, _ := toRat(x)
	if r == nil {
		return nil, c.errorf(n, "invalid number")
	}
	if n.name == "abs" {
		r.Abs(r)
		if t == TypeInteger {
			return []Value{{Data: new(big.Int).Abs(big.NewInt(x.(int64))).Int64(), Type: TypeInteger}}, nil
		}
		return []Value{{Data: ratToDecimal(r), Type: TypeDecimal}}, nil
	}
	digits := int64(0)
	if len(n.args) == 1 {
		d, err := c.singletonInt(n.args[0], sc)
		if err != nil {
			return nil, err
		}
		if d != nil {
			digits = min(max(*d, 0), 20)
		}
	}
	var out *big.Int
	q, m := new(big.Int).QuoRem(r.Num(), r.Denom(), new(big.Int)) // truncates toward zero
	switch n.name {
	case "truncate":
		out = q
	case "floor":
		out = q
		if m.Sign() < 0 {
			out.Sub(out, big.NewInt(1))
		}
	case "ceiling":
		out = q
		if m.Sign() > 0 {
			out.Add(out, big.NewInt(1))
		}
	case "round":
		return []Value{{Data: json.Number(r.FloatString(int(digits))), Type: TypeDecimal}}, nil
	}
	if !out.IsInt64() {
		return nil, c.errorf(n, "integer overflow")
	}
	return []Value{{Data: out.Int64(), Type: TypeInteger}}, nil
}
