package search

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/fhirsub/fhirsub/conformance/definitions"
)

// Keys extracts the index keys of every token, reference and uri search
// parameter of the resource (see the package documentation for the
// formats), sorted and without duplicates.
func Keys(res map[string]any) ([]Key, error) {
	rt, _ := res["resourceType"].(string)
	tp := paramsOf(rt)
	if tp == nil {
		return nil, fmt.Errorf("index keys: %q: %w", rt, ErrUnknownType)
	}
	var (
		keys []Key
		toks []token
		refs []refValue
		uris []string
	)
	for _, p := range tp.list {
		if p.expr == nil || p.typ != "token" && p.typ != "reference" && p.typ != "uri" {
			continue
		}
		nodes, err := p.eval(res)
		if err != nil {
			return nil, fmt.Errorf("index keys of %s: %w", rt, err)
		}
		if len(nodes) == 0 {
			continue
		}
		switch p.typ {
		case "token":
			toks = tokensOf(nodes, toks[:0])
			for _, t := range toks {
				if t.code == "" {
					continue
				}
				keys = append(keys, Key{p.code, t.system + "|" + t.code}, Key{p.code, t.code})
			}
		case "reference":
			refs = refsOf(nodes, refs[:0], nil)
			for _, r := range refs {
				keys = append(keys, Key{p.code, r.key})
			}
		case "uri":
			uris = urisOf(nodes, uris[:0])
			for _, u := range uris {
				keys = append(keys, Key{p.code, u})
				if c := canonicalOf(u); c != u {
					keys = append(keys, Key{p.code, c})
				}
			}
		}
	}
	slices.SortFunc(keys, func(a, b Key) int {
		return cmp.Or(cmp.Compare(a.Param, b.Param), cmp.Compare(a.Value, b.Value))
	})
	return slices.Compact(keys), nil
}

// maxResolvedNarrow is the most values of a resolved chain or _has that
// still narrow the store's query.
const maxResolvedNarrow = 100

// Narrow returns an AND of OR-groups of exact keys: every resource that
// Match accepts has, for each group, at least one key of the group among
// Keys(res). An empty result means "no narrowing possible: scan the type".
// Only unmodified token, reference (also with a :[type] modifier) and uri
// clauses narrow; a clause with one value that cannot be narrowed (such as
// "system|") gives no group.
func (q *Query) Narrow() [][]Key {
	var groups [][]Key
	for i := range q.clauses {
		if g := q.clauses[i].narrow(); len(g) > 0 {
			groups = append(groups, g)
		}
	}
	return groups
}

func (c *clause) narrow() []Key {
	if c.link != nil || c.none || c.modifier != "" && c.modifier != "type" {
		return nil
	}
	if c.resolved && len(c.values) > maxResolvedNarrow {
		// A large resolved link would become a query term per value
		// (SQLite caps compound selects at 500): Match decides instead.
		return nil
	}
	code := c.p.code
	var g []Key
	for _, v := range c.values {
		switch c.p.typ {
		case "token":
			switch v.sysMode {
			case anySystem:
				g = append(g, Key{code, v.code})
			case noSystem:
				g = append(g, Key{code, "|" + v.code})
			default:
				if v.anyCode {
					return nil
				}
				g = append(g, Key{code, v.system + "|" + v.code})
			}
		case "reference":
			if v.ref.key != "" {
				g = append(g, Key{code, v.ref.key})
				continue
			}
			if len(c.p.targets) == 0 {
				return nil
			}
			for _, t := range c.p.targets {
				g = append(g, Key{code, t + "/" + v.ref.id})
			}
		case "uri":
			g = append(g, Key{code, v.exact})
		default:
			return nil
		}
	}
	return g
}

// PatientIDs returns the ids of the patients whose compartment contains
// the resource, without duplicates: a Patient's own id, or the Patient
// references of the parameters the Patient CompartmentDefinition lists for
// the type. Parameters that cannot be evaluated are skipped.
func PatientIDs(res map[string]any) []string {
	rt, _ := res["resourceType"].(string)
	if rt == "Patient" {
		if id := str(res, "id"); id != "" {
			return []string{id}
		}
		return nil
	}
	tp := paramsOf(rt)
	if tp == nil {
		return nil
	}
	var ids []string
	for _, code := range definitions.PatientCompartment(rt) {
		p := tp.byCode[code]
		if p == nil || p.typ != "reference" {
			continue
		}
		nodes, err := p.eval(res)
		if err != nil {
			continue
		}
		for _, r := range refsOf(nodes, nil, nil) {
			if r.typ == "Patient" && !slices.Contains(ids, r.id) {
				ids = append(ids, r.id)
			}
		}
	}
	return ids
}
