package search

import (
	"fmt"
	"math/big"
	"slices"
	"strings"

	"github.com/fhirsub/fhirsub/conformance/fhirpath"
)

// Match reports whether the decoded resource satisfies every clause. A
// resource of another type never matches. The error reports a search
// parameter expression that could not be evaluated on the resource.
func (q *Query) Match(res map[string]any) (bool, error) {
	return q.match(res, nil)
}

// match is Match, with the parameters evaluated through f when it is not
// nil (MatchFocus).
func (q *Query) match(res map[string]any, f *Focus) (bool, error) {
	if rt, _ := res["resourceType"].(string); rt != q.Type {
		return false, nil
	}
	for i := range q.clauses {
		ok, err := q.clauses[i].match(res, f)
		if err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}

func (c *clause) match(res map[string]any, f *Focus) (bool, error) {
	switch {
	case c.link != nil:
		return false, fmt.Errorf("%s: %w", c.name, ErrUnresolved)
	case c.none:
		return false, nil
	}
	var nodes []fhirpath.Value
	var err error
	if f != nil {
		nodes, err = f.eval(c.p)
	} else {
		nodes, err = c.p.eval(res)
	}
	if err != nil {
		return false, err
	}
	if c.modifier == "missing" {
		for _, v := range c.values {
			if (len(nodes) == 0) == v.missing {
				return true, nil
			}
		}
		return false, nil
	}
	return matchNodes(c.p, c.p.typ, c.modifier, c.values, nodes)
}

// matchNodes reports whether any value matches any of the nodes, read as
// the parameter type typ (p is nil for a composite component).
func matchNodes(p *param, typ, modifier string, values []value, nodes []fhirpath.Value) (bool, error) {
	switch typ {
	case "token":
		toks := tokensOf(nodes, nil)
		switch modifier {
		case "text":
			return matchText(values, toks), nil
		case "not":
			return !matchTokens(values, toks), nil
		}
		return matchTokens(values, toks), nil
	case "reference":
		if modifier == "identifier" {
			var idents []token
			refsOf(nodes, nil, &idents)
			return matchTokens(values, idents), nil
		}
		return matchRefs(p, values, refsOf(nodes, nil, nil)), nil
	case "string":
		return matchStrings(modifier, values, stringsOf(nodes, nil)), nil
	case "uri":
		return matchURIs(modifier, values, urisOf(nodes, nil)), nil
	case "date":
		spans := spansOf(nodes, nil)
		for _, v := range values {
			for _, s := range spans {
				if matchSpan(v.prefix.String(), s, v.when) {
					return true, nil
				}
			}
		}
		return false, nil
	case "number":
		nums := numbersOf(nodes, nil)
		for _, v := range values {
			for _, n := range nums {
				if matchNumber(v.prefix.String(), n, v.more.num) {
					return true, nil
				}
			}
		}
		return false, nil
	case "quantity":
		return matchQuantities(values, quantitiesOf(nodes, nil)), nil
	case "composite":
		return matchComposite(p, values, nodes)
	}
	return false, nil
}

func matchTokens(values []value, toks []token) bool {
	for i := range values {
		for j := range toks {
			if tokenMatch(&values[i], &toks[j]) {
				return true
			}
		}
	}
	return false
}

func tokenMatch(v *value, t *token) bool {
	if t.code == "" {
		return false
	}
	switch v.sysMode {
	case noSystem:
		return t.system == "" && t.code == v.code
	case inSystem:
		return t.system == v.system && (v.anyCode || t.code == v.code)
	}
	return t.code == v.code
}

func matchText(values []value, toks []token) bool {
	for _, t := range toks {
		if t.text == "" {
			continue
		}
		n := normalize(t.text)
		for _, v := range values {
			if strings.HasPrefix(n, v.text) {
				return true
			}
		}
	}
	return false
}

func matchRefs(p *param, values []value, refs []refValue) bool {
	for _, v := range values {
		for _, r := range refs {
			if v.ref.key != "" {
				if r.key == v.ref.key {
					return true
				}
				continue
			}
			// An id alone: any reference to a target type with that id.
			if r.id == v.ref.id && (len(p.targets) == 0 || slices.Contains(p.targets, r.typ)) {
				return true
			}
		}
	}
	return false
}

func matchStrings(modifier string, values []value, strs []string) bool {
	for _, s := range strs {
		var n string
		if modifier != "exact" {
			n = normalize(s)
		}
		for _, v := range values {
			switch modifier {
			case "exact":
				if s == v.exact {
					return true
				}
			case "contains":
				if strings.Contains(n, v.text) {
					return true
				}
			default:
				if strings.HasPrefix(n, v.text) {
					return true
				}
			}
		}
	}
	return false
}

func matchURIs(modifier string, values []value, uris []string) bool {
	for _, u := range uris {
		for _, v := range values {
			switch modifier {
			case "above":
				if strings.HasPrefix(v.exact, u) {
					return true
				}
			case "below":
				if strings.HasPrefix(u, v.exact) {
					return true
				}
			default:
				if u == v.exact || canonicalOf(u) == v.exact {
					return true
				}
			}
		}
	}
	return false
}

func matchQuantities(values []value, qs []quantity) bool {
	for _, v := range values {
		for _, q := range qs {
			if v.more.quantity && !unitMatch(v.more, &q) {
				continue
			}
			if matchNumber(v.prefix.String(), q.v, v.more.num) {
				return true
			}
		}
	}
	return false
}

// unitMatch applies the "|system|code" part of a quantity search: with a
// system, system and code must both match; without, the code or the unit.
func unitMatch(v *valueMore, q *quantity) bool {
	if v.unitSys != "" {
		return q.system == v.unitSys && (v.unitCode == "" || q.code == v.unitCode)
	}
	return q.code == v.unitCode || q.unit == v.unitCode
}

// matchComposite evaluates each component on each node the composite
// selects: all components of one value must match within the same node.
func matchComposite(p *param, values []value, nodes []fhirpath.Value) (bool, error) {
	for _, n := range nodes {
		m, ok := n.Data.(map[string]any)
		if !ok {
			continue
		}
		compNodes := make([][]fhirpath.Value, len(p.comps))
		for i := range p.comps {
			compNodes[i] = p.comps[i].eval(m)
		}
	values:
		for _, v := range values {
			for i, c := range p.comps {
				ok, err := matchNodes(nil, c.typ, "", v.more.parts[i:i+1], compNodes[i])
				if err != nil {
					return false, err
				}
				if !ok {
					continue values
				}
			}
			return true, nil
		}
	}
	return false, nil
}

// Less orders two resources by the query's _sort (false when equal). For each key a
// resource sorts by its lowest value ascending and its highest value
// descending; resources without a value come last either way.
func (q *Query) Less(a, b map[string]any) bool {
	sh := q.Shape()
	for i, sk := range sh.Sort {
		p := sh.sorts[i]
		va, oka := sortValue(p, a, sk.Descending)
		vb, okb := sortValue(p, b, sk.Descending)
		switch {
		case !oka && !okb:
			continue
		case !oka:
			return false
		case !okb:
			return true
		}
		c := va.cmp(vb)
		if sk.Descending {
			c = -c
		}
		if c != 0 {
			return c < 0
		}
	}
	return false
}

// sortKey is a comparable value of one parameter: a string, a number or a
// time.
type sortKey struct {
	s string
	n *big.Rat
	t int64
}

func (k sortKey) cmp(o sortKey) int {
	if k.n != nil && o.n != nil {
		return k.n.Cmp(o.n)
	}
	if k.t != o.t {
		if k.t < o.t {
			return -1
		}
		return 1
	}
	return strings.Compare(k.s, o.s)
}

// sortValue returns the lowest (or, for desc, highest) value of p in res.
func sortValue(p *param, res map[string]any, desc bool) (sortKey, bool) {
	nodes, err := p.eval(res)
	if err != nil || len(nodes) == 0 {
		return sortKey{}, false
	}
	var keys []sortKey
	switch p.typ {
	case "string":
		for _, s := range stringsOf(nodes, nil) {
			keys = append(keys, sortKey{s: normalize(s)})
		}
	case "token":
		for _, t := range tokensOf(nodes, nil) {
			if t.code != "" {
				keys = append(keys, sortKey{s: t.code})
			}
		}
	case "reference":
		for _, r := range refsOf(nodes, nil, nil) {
			keys = append(keys, sortKey{s: r.key})
		}
	case "uri":
		for _, u := range urisOf(nodes, nil) {
			keys = append(keys, sortKey{s: u})
		}
	case "date":
		for _, s := range spansOf(nodes, nil) {
			if desc {
				keys = append(keys, sortKey{t: s.hi})
			} else {
				keys = append(keys, sortKey{t: s.lo})
			}
		}
	case "number":
		for _, n := range numbersOf(nodes, nil) {
			keys = append(keys, sortKey{n: n})
		}
	case "quantity":
		for _, q := range quantitiesOf(nodes, nil) {
			keys = append(keys, sortKey{n: q.v})
		}
	}
	if len(keys) == 0 {
		return sortKey{}, false
	}
	best := keys[0]
	for _, k := range keys[1:] {
		if c := k.cmp(best); c < 0 && !desc || c > 0 && desc {
			best = k
		}
	}
	return best, true
}

// canonicalOf strips the |version of a versioned canonical URL, so that
// `_profile=url` finds "url|1.0" (a search with a version stays exact).
func canonicalOf(u string) string {
	if i := strings.LastIndexByte(u, '|'); i >= 0 {
		return u[:i]
	}
	return u
}
