package search

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/fhirsub/fhirsub/conformance/definitions"
)

// notSupported lists the result and control parameters fhirsub knows but
// does not implement; they are rejected rather than ignored.
var notSupported = map[string]bool{
	"_contained": true, "_containedType": true,
	"_list": true, "_query": true, "_filter": true, "_type": true,
	"_text": true, "_content": true, "_graph": true, "_at": true, "_since": true,
}

// NotSupported reports whether code is a search or result parameter that
// fhirsub knows but refuses (so that the CapabilityStatement leaves it out).
func NotSupported(code string) bool { return notSupported[code] }

// knownModifiers maps every R4 modifier name to a flag telling whether it is
// implemented somewhere.
var knownModifiers = map[string]bool{
	"missing": true, "exact": true, "contains": true, "not": true, "text": true,
	"above": true, "below": true, "identifier": true,
	"in": false, "not-in": false, "of-type": false, "iterate": false,
}

// comparator is an R4 comparison prefix of a date, number or quantity
// value (0: none given). A value keeps it in a byte rather than a string:
// a subscription keeps the values of its criteria for its lifetime.
type comparator uint8

// comparators are the prefixes, indexed by their comparator.
var comparators = [...]string{"", "eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap"}

// String returns the prefix as written ("" for none).
func (c comparator) String() string { return comparators[c] }

// sortable are the parameter types `_sort` accepts.
var sortable = map[string]bool{
	"string": true, "date": true, "number": true, "token": true,
	"quantity": true, "uri": true, "reference": true,
}

// Limits of one search: every value beyond them would become a term of
// the store's query (SQLite refuses past its expression depth and
// variable limits); Parse refuses them with an *Error naming the limit.
const (
	// MaxOrValues caps the comma-separated (OR) values of one parameter.
	MaxOrValues = 100
	// MaxClauses caps the search parameters of one query, each repetition
	// of a name counting once (control parameters such as _count do not
	// count).
	MaxClauses = 100
)

// Parse parses the parameters of a search on resourceType. Unknown
// parameters, chains, modifiers or prefixes the type does not allow give an
// *Error naming the parameter. Paging and format parameters (_count,
// _offset, _sort) are taken; `_format` and `_pretty` are ignored. Parameters
// are read in name order, so errors are deterministic.
func Parse(resourceType string, params url.Values) (*Query, error) {
	tp := paramsOf(resourceType)
	if tp == nil {
		return nil, fmt.Errorf("%q: %w", resourceType, ErrUnknownType)
	}
	q := &Query{Type: tp.name}
	given := make(url.Values, len(params))
	for name, vals := range params {
		if name != "_format" && name != "_pretty" {
			given[name] = vals
		}
	}
	q.raw = canonical(given)
	// The clauses keep names and values read back from raw (substrings
	// of it, where nothing was escaped), not the caller's strings: a
	// subscription's Query then holds its parameters once. canonical
	// escapes whatever ParseQuery would refuse.
	kept, err := url.ParseQuery(q.raw)
	if err != nil {
		return nil, fmt.Errorf("search parameters %q: %w", q.raw, err)
	}
	names := make([]string, 0, len(kept))
	for name := range kept {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if err := q.parseParam(tp, name, kept[name]); err != nil {
			return nil, err
		}
	}
	return q, nil
}

func (q *Query) parseParam(tp *typeParams, name string, vals []string) error {
	switch name {
	case "_format", "_pretty":
		return nil
	case "_count":
		n, err := nonNegative(name, vals)
		q.Count = n
		return err
	case "_offset":
		n, err := nonNegative(name, vals)
		q.Offset = n
		return err
	case "_sort":
		return q.parseSort(tp, vals)
	}
	if ok, err := q.parseResultParam(name, vals); ok {
		return err
	}
	code, mod, hasMod := strings.Cut(name, ":")
	switch {
	case code == "":
		return &Error{Param: name, Message: "empty parameter name"}
	case code == "_has":
		return q.parseHas(tp, name, vals)
	case notSupported[code] || strings.HasPrefix(code, "_has"):
		return &Error{Param: name, Message: "not supported", Unsupported: true}
	case strings.Contains(code, ".") || strings.Contains(mod, "."):
		return q.parseChain(tp, name, vals)
	}
	p := tp.byCode[code]
	if p == nil {
		return &Error{Param: name, Message: fmt.Sprintf("unknown search parameter for %s", q.Type), Unsupported: true}
	}
	if p.unsupported != "" {
		return &Error{Param: name, Message: p.unsupported, Unsupported: true}
	}
	c := clause{name: name, p: p}
	if hasMod {
		if err := c.setModifier(mod); err != nil {
			return err
		}
	}
	for _, raw := range vals {
		if len(q.clauses) >= MaxClauses {
			return &Error{Param: name, Message: fmt.Sprintf("more than %d search parameters (the limit of parameters per search)", MaxClauses)}
		}
		cl := c
		vs, err := cl.parseValues(raw)
		if err != nil {
			return err
		}
		cl.values = vs
		q.clauses = append(q.clauses, cl)
	}
	return nil
}

func nonNegative(name string, vals []string) (int, error) {
	if len(vals) != 1 {
		return 0, &Error{Param: name, Message: "given more than once"}
	}
	n, err := strconv.Atoi(vals[0])
	if err != nil || n < 0 {
		return 0, &Error{Param: name, Message: fmt.Sprintf("%q is not a non-negative integer", vals[0])}
	}
	return n, nil
}

func (q *Query) parseSort(tp *typeParams, vals []string) error {
	if len(vals) != 1 {
		return &Error{Param: "_sort", Message: "given more than once"}
	}
	for _, item := range strings.Split(vals[0], ",") {
		desc := strings.HasPrefix(item, "-")
		code := strings.TrimPrefix(item, "-")
		p := tp.byCode[code]
		switch {
		case code == "":
			return &Error{Param: "_sort", Message: "empty sort key"}
		case p == nil:
			return &Error{Param: "_sort", Message: fmt.Sprintf("unknown search parameter %q for %s", code, q.Type)}
		case !sortable[p.typ] || p.unsupported != "":
			return &Error{Param: "_sort", Message: fmt.Sprintf("cannot sort by %q (a %s parameter)", code, p.typ)}
		}
		sh := q.shaped()
		sh.Sort = append(sh.Sort, SortKey{Param: code, Descending: desc})
		sh.sorts = append(sh.sorts, p)
	}
	return nil
}

// refType returns the resource type of a reference :[type] modifier
// ("" for none): the modifier as written in the name. A clause does not
// keep it apart, as it counts only when the values are parsed.
func (c *clause) refType() string {
	if c.modifier != "type" {
		return ""
	}
	_, t, _ := strings.Cut(c.name, ":")
	return t
}

// setModifier checks that the modifier exists and that the parameter type
// allows it.
func (c *clause) setModifier(mod string) error {
	p := c.p
	implemented, known := knownModifiers[mod]
	if !known && p.typ == "reference" && definitions.IsResourceType(mod) {
		if len(p.targets) > 0 && !slices.Contains(p.targets, mod) {
			return &Error{Param: c.name, Message: fmt.Sprintf("%s is not a target type of %q (targets: %s)", mod, p.code, strings.Join(p.targets, ", "))}
		}
		c.modifier = "type" // the type is read back from the name (refType)
		return nil
	}
	if !known {
		return &Error{Param: c.name, Message: fmt.Sprintf("unknown modifier :%s", mod), Unsupported: true}
	}
	allowed := mod == "missing"
	switch p.typ {
	case "string":
		allowed = allowed || mod == "exact" || mod == "contains"
	case "token":
		allowed = allowed || mod == "not" || mod == "text" || mod == "in" || mod == "not-in" ||
			mod == "above" || mod == "below" || mod == "of-type"
	case "reference":
		allowed = allowed || mod == "identifier" || mod == "above" || mod == "below"
	case "uri":
		allowed = allowed || mod == "above" || mod == "below"
	}
	if !allowed {
		return &Error{Param: c.name, Message: fmt.Sprintf("modifier :%s is not allowed on a %s parameter", mod, p.typ), Unsupported: true}
	}
	if !implemented || (mod == "above" || mod == "below") && p.typ != "uri" {
		return &Error{Param: c.name, Message: fmt.Sprintf("modifier :%s is not supported (it needs terminology or hierarchy services)", mod), Unsupported: true}
	}
	c.modifier = mod
	return nil
}

// parseValues splits one parameter value into its OR alternatives and
// parses each according to the parameter type and modifier.
func (c *clause) parseValues(raw string) ([]value, error) {
	parts := splitEscaped(raw, ',')
	if len(parts) > MaxOrValues {
		return nil, &Error{Param: c.name, Message: fmt.Sprintf("%d comma-separated values: the limit of OR values per parameter is %d", len(parts), MaxOrValues)}
	}
	out := make([]value, 0, len(parts))
	for _, part := range parts {
		if part == "" {
			return nil, &Error{Param: c.name, Message: fmt.Sprintf("empty value in %q", raw)}
		}
		v, err := c.parseValue(part)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

func (c *clause) parseValue(s string) (value, error) {
	switch c.modifier {
	case "missing":
		switch s {
		case "true":
			return value{missing: true}, nil
		case "false":
			return value{}, nil
		}
		return value{}, &Error{Param: c.name, Message: fmt.Sprintf("%q: :missing takes true or false", s)}
	case "text":
		return value{text: normalize(unescape(s))}, nil
	case "identifier":
		return c.wrap(parseToken(s))
	}
	return c.wrap(parseTyped(c.p.typ, c.p, c.refType(), s))
}

func (c *clause) wrap(v value, err error) (value, error) {
	if err != nil {
		return value{}, &Error{Param: c.name, Message: err.Error()}
	}
	return v, nil
}

// parseTyped parses a value of one parameter type; p is needed for
// reference targets and composite components.
func parseTyped(typ string, p *param, refType, s string) (value, error) {
	switch typ {
	case "token":
		return parseToken(s)
	case "string":
		u := unescape(s)
		return value{text: normalize(u), exact: u}, nil
	case "uri":
		return value{exact: unescape(s)}, nil
	case "reference":
		return parseReference(unescape(s), refType)
	case "date":
		prefix, rest, err := splitPrefix(s)
		if err != nil {
			return value{}, err
		}
		// An unencoded "+01:00" arrives as " 01:00"; read it back.
		sp, err := parseSpan(strings.Replace(unescape(rest), " ", "+", 1))
		if err != nil {
			return value{}, fmt.Errorf("%q: %w", rest, err)
		}
		return value{prefix: prefix, when: sp}, nil
	case "number":
		prefix, rest, err := splitPrefix(s)
		if err != nil {
			return value{}, err
		}
		d, err := parseDecimal(unescape(rest))
		if err != nil {
			return value{}, fmt.Errorf("%q: %w", rest, err)
		}
		return value{prefix: prefix, more: &valueMore{num: d}}, nil
	case "quantity":
		return parseQuantity(s)
	case "composite":
		return parseComposite(p, s)
	}
	return value{}, fmt.Errorf("%s parameters are not supported", typ)
}

func splitPrefix(s string) (prefix comparator, rest string, err error) {
	if len(s) >= 2 && isLetter(s[0]) && isLetter(s[1]) {
		i := slices.Index(comparators[1:], s[:2])
		if i < 0 {
			return 0, "", fmt.Errorf("unknown prefix %q (use eq, ne, gt, lt, ge, le, sa, eb or ap)", s[:2])
		}
		return comparator(i + 1), s[2:], nil
	}
	return 0, s, nil
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

func parseToken(s string) (value, error) {
	parts := splitEscaped(s, '|')
	switch len(parts) {
	case 1:
		return value{code: unescape(parts[0]), sysMode: anySystem}, nil
	case 2:
		sys, code := unescape(parts[0]), unescape(parts[1])
		switch {
		case sys == "" && code == "":
			return value{}, fmt.Errorf("%q: a token needs a system or a code", s)
		case sys == "":
			return value{code: code, sysMode: noSystem}, nil
		case code == "":
			return value{system: sys, sysMode: inSystem, anyCode: true}, nil
		}
		return value{system: sys, code: code, sysMode: inSystem}, nil
	}
	return value{}, fmt.Errorf("%q: a token is [system]|[code] (escape a literal | as \\|)", s)
}

func parseReference(s, refType string) (value, error) {
	if refType != "" && !strings.Contains(s, "/") {
		s = refType + "/" + s
	}
	if !strings.ContainsAny(s, "/:") {
		// An id alone: any reference to a target type with that id.
		if !validID(s) {
			return value{}, fmt.Errorf("%q is not a resource id", s)
		}
		return value{ref: refValue{id: s}, exact: s}, nil
	}
	r := parseRef(s)
	if refType != "" && r.typ != refType {
		return value{}, fmt.Errorf("%q is not a %s reference", s, refType)
	}
	if r.key == "" {
		return value{}, fmt.Errorf("%q is not a reference", s)
	}
	return value{ref: r, exact: s}, nil
}

func parseQuantity(s string) (value, error) {
	prefix, rest, err := splitPrefix(s)
	if err != nil {
		return value{}, err
	}
	parts := splitEscaped(rest, '|')
	if len(parts) != 1 && len(parts) != 3 {
		return value{}, fmt.Errorf("%q: a quantity is [prefix]number[|system|code]", s)
	}
	d, err := parseDecimal(unescape(parts[0]))
	if err != nil {
		return value{}, fmt.Errorf("%q: %w", parts[0], err)
	}
	m := &valueMore{num: d}
	if len(parts) == 3 {
		m.unitSys, m.unitCode = unescape(parts[1]), unescape(parts[2])
		m.quantity = m.unitSys != "" || m.unitCode != ""
	}
	return value{prefix: prefix, more: m}, nil
}

func parseComposite(p *param, s string) (value, error) {
	parts := splitEscaped(s, '$')
	if len(parts) != len(p.comps) {
		return value{}, fmt.Errorf("%q: expected %d components separated by $", s, len(p.comps))
	}
	m := &valueMore{parts: make([]value, len(parts))}
	for i, part := range parts {
		pv, err := parseTyped(p.comps[i].typ, nil, "", part)
		if err != nil {
			return value{}, fmt.Errorf("component %d: %w", i+1, err)
		}
		m.parts[i] = pv
	}
	return value{more: m}, nil
}

// splitEscaped splits s at every sep not preceded by a backslash. Escapes
// are kept; unescape removes them from the final pieces.
func splitEscaped(s string, sep byte) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case sep:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// unescape removes the search escapes `\,` `\|` `\$` and `\\`.
func unescape(s string) string {
	if strings.IndexByte(s, '\\') < 0 {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
