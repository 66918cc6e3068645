package search

import (
	"fmt"
	"slices"
	"strings"
)

// Include is one _include or _revinclude parameter.
type Include struct {
	// Rev is true for _revinclude.
	Rev bool
	// Iterate is the :iterate modifier: the include applies to included
	// resources too.
	Iterate bool
	// Source is the type whose reference parameter Param points at the
	// target; Target, when set, limits the targets to one type.
	Source, Param, Target string

	p *param
}

// String returns the parameter as written in a query.
func (in Include) String() string {
	name := "_include"
	if in.Rev {
		name = "_revinclude"
	}
	if in.Iterate {
		name += ":iterate"
	}
	v := in.Source + ":" + in.Param
	if in.Target != "" {
		v += ":" + in.Target
	}
	return name + "=" + v
}

// References returns the "Type/id" references of res (a resource of type
// Source) through Param, limited to Target when set.
func (in Include) References(res map[string]any) ([]string, error) {
	if rt, _ := res["resourceType"].(string); rt != in.Source || in.p == nil {
		return nil, nil
	}
	nodes, err := in.p.eval(res)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, r := range refsOf(nodes, nil, nil) {
		if r.typ == "" || r.id == "" || in.Target != "" && r.typ != in.Target {
			continue
		}
		if len(in.p.targets) > 0 && !slices.Contains(in.p.targets, r.typ) {
			continue
		}
		if !slices.Contains(out, r.typ+"/"+r.id) {
			out = append(out, r.typ+"/"+r.id)
		}
	}
	return out, nil
}

// MaxIncludes caps the distinct _include and _revinclude values of one
// search: each walks the whole page (and, with :iterate, what it brought
// in) again.
const MaxIncludes = 32

// summaries are the _summary values served.
var summaries = map[string]bool{"count": true, "data": true, "text": true, "true": true, "false": true}

// parseResultParam parses _include, _revinclude (with :iterate),
// _summary, _elements and _total; ok is false for other names.
func (q *Query) parseResultParam(name string, vals []string) (ok bool, err error) {
	code, mod, _ := strings.Cut(name, ":")
	switch code {
	case "_include", "_revinclude":
		switch mod {
		case "", "iterate", "recurse":
		default:
			return true, &Error{Param: name, Message: fmt.Sprintf("unknown modifier :%s (use :iterate)", mod), Unsupported: true}
		}
		for _, v := range vals {
			in, err := q.parseInclude(code == "_revinclude", mod != "", name, v)
			if err != nil {
				return true, err
			}
			sh := q.shaped()
			if slices.ContainsFunc(sh.Includes, func(o Include) bool {
				return o.Rev == in.Rev && o.Iterate == in.Iterate && o.Source == in.Source && o.Param == in.Param && o.Target == in.Target
			}) {
				continue // a repeat adds nothing but the work of walking the page again
			}
			if len(sh.Includes) == MaxIncludes {
				return true, &Error{Param: name, Message: fmt.Sprintf("more than %d distinct _include and _revinclude values (the limit per search)", MaxIncludes)}
			}
			sh.Includes = append(sh.Includes, in)
		}
		return true, nil
	case "_summary", "_total", "_elements":
		if mod != "" {
			return true, &Error{Param: name, Message: "takes no modifier"}
		}
		if len(vals) != 1 {
			return true, &Error{Param: name, Message: "given more than once"}
		}
	default:
		return false, nil
	}
	v := vals[0]
	switch code {
	case "_summary":
		if !summaries[v] {
			return true, &Error{Param: name, Message: fmt.Sprintf("%q is not supported (count, true, text, data or false)", v)}
		}
		q.shaped().Summary = v
	case "_total":
		switch v {
		case "none", "estimate", "accurate":
		default:
			return true, &Error{Param: name, Message: fmt.Sprintf("%q is not none, estimate or accurate", v)}
		}
		q.shaped().Total = v
	case "_elements":
		for _, e := range strings.Split(v, ",") {
			e = strings.TrimSpace(e)
			if !isName(e) {
				return true, &Error{Param: name, Message: fmt.Sprintf("%q is not a top-level element name", e)}
			}
			sh := q.shaped()
			sh.Elements = append(sh.Elements, e)
		}
	}
	return true, nil
}

func (q *Query) parseInclude(rev, iterate bool, name, v string) (Include, error) {
	bad := func(format string, args ...any) (Include, error) {
		return Include{}, &Error{Param: name, Message: fmt.Sprintf(format, args...)}
	}
	if v == "*" {
		return bad("%s=* is not supported: name the reference parameter (Type:parameter)", name)
	}
	parts := strings.Split(v, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return bad("%q is not Type:parameter[:targetType]", v)
	}
	in := Include{Rev: rev, Iterate: iterate, Source: parts[0], Param: parts[1]}
	if len(parts) == 3 {
		in.Target = parts[2]
	}
	tp := paramsOf(in.Source)
	if tp == nil {
		return bad("unknown resource type %q", in.Source)
	}
	p := tp.byCode[in.Param]
	if p == nil || p.typ != "reference" || p.unsupported != "" {
		return bad("%s:%s is not a reference search parameter", in.Source, in.Param)
	}
	in.p = p
	if in.Target != "" {
		if paramsOf(in.Target) == nil {
			return bad("unknown resource type %q", in.Target)
		}
		if len(p.targets) > 0 && !slices.Contains(p.targets, in.Target) {
			return bad("%s is not a target of %s:%s", in.Target, in.Source, in.Param)
		}
	}
	if !iterate {
		if !rev && in.Source != q.Type {
			return bad("_include=%s starts from %s, but the search is on %s (use _include:iterate)", v, in.Source, q.Type)
		}
		if rev && len(p.targets) > 0 && !slices.Contains(p.targets, q.Type) && (in.Target == "" || in.Target != q.Type) {
			return bad("%s:%s does not refer to %s", in.Source, in.Param, q.Type)
		}
	}
	return in, nil
}

// Includes returns the _include values a search on resourceType accepts
// without :iterate ("Observation:subject", …): one per supported
// reference parameter of the type, sorted.
func Includes(resourceType string) []string {
	tp := paramsOf(resourceType)
	if tp == nil {
		return nil
	}
	var out []string
	for _, p := range tp.list {
		if p.typ == "reference" && p.unsupported == "" && !notSupported[p.code] {
			out = append(out, resourceType+":"+p.code)
		}
	}
	return out
}
