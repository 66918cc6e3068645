package search

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestNarrowSound is the property test of Narrow: for random queries built
// from values present in the testdata resources (and in the others, so
// that many queries do not match), whenever Match accepts a resource, every
// group of Narrow has a key among Keys(res).
func TestNarrowSound(t *testing.T) {
	resources := loadResources(t)
	pool := map[string][]string{} // resource type → candidate "name=value" parts
	for _, res := range resources {
		rt := res["resourceType"].(string)
		pool[rt] = append(pool[rt], candidates(t, res)...)
	}
	keysOf := map[*map[string]any]map[Key]bool{}
	for i := range resources {
		keys, err := Keys(resources[i])
		if err != nil {
			t.Fatal(err)
		}
		set := map[Key]bool{}
		for _, k := range keys {
			set[k] = true
		}
		keysOf[&resources[i]] = set
	}
	rng := rand.New(rand.NewPCG(1, 2))
	matched, narrowed := 0, 0
	for iter := 0; iter < 3000; iter++ {
		res := &resources[rng.IntN(len(resources))]
		rt := (*res)["resourceType"].(string)
		cands := pool[rt]
		var parts []string
		for n := 1 + rng.IntN(3); n > 0; n-- {
			part := cands[rng.IntN(len(cands))]
			// Sometimes OR a second value of the same parameter.
			if rng.IntN(3) == 0 {
				name, _, _ := strings.Cut(part, "=")
				for _, other := range cands {
					if o, v, _ := strings.Cut(other, "="); o == name && rng.IntN(4) == 0 {
						part += "," + v
						break
					}
				}
			}
			parts = append(parts, part)
		}
		criteria := rt + "?" + strings.Join(parts, "&")
		q, err := ParseCriteria(criteria)
		if err != nil {
			t.Fatalf("candidate query %q does not parse: %v", criteria, err)
		}
		for i := range resources {
			other := &resources[i]
			if (*other)["resourceType"] != rt {
				continue
			}
			ok, err := q.Match(*other)
			if err != nil {
				t.Fatalf("match %q: %v", criteria, err)
			}
			if !ok {
				continue
			}
			matched++
			groups := q.Narrow()
			if len(groups) > 0 {
				narrowed++
			}
			for _, g := range groups {
				if !slices.ContainsFunc(g, func(k Key) bool { return keysOf[other][k] }) {
					t.Fatalf("%q matches %s/%s but no key of group %v is among its keys", criteria, rt, (*other)["id"], g)
				}
			}
		}
	}
	t.Logf("%d (query, resource) pairs of 3000 random queries matched, %d of those narrowed", matched, narrowed)
	if matched < 300 || narrowed < 100 {
		t.Errorf("too few matching (%d) or narrowed (%d) queries: the generator is broken", matched, narrowed)
	}
}

// TestOwnValuesMatch checks the generator and the extraction together:
// the plain equality query built from each token, reference and uri value
// of a resource matches that resource.
func TestOwnValuesMatch(t *testing.T) {
	for _, res := range loadResources(t) {
		rt := res["resourceType"].(string)
		n := 0
		for _, c := range candidates(t, res) {
			name, _, _ := strings.Cut(c, "=")
			p := paramsOf(rt).byCode[name]
			if p == nil || (p.typ != "token" && p.typ != "reference" && p.typ != "uri") {
				continue
			}
			q, err := ParseCriteria(rt + "?" + c)
			if err != nil {
				t.Fatal(err)
			}
			if ok, err := q.Match(res); !ok || err != nil {
				t.Errorf("%s/%s does not match its own value %s (err %v)", rt, res["id"], c, err)
			}
			n++
		}
		if n == 0 {
			t.Errorf("%s/%s: no equality candidates", rt, res["id"])
		}
	}
}

func loadResources(t *testing.T) []map[string]any {
	t.Helper()
	names, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	if len(names) == 0 {
		t.Fatal("no testdata")
	}
	var out []map[string]any
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		var res map[string]any
		if err := dec.Decode(&res); err != nil {
			t.Fatal(err)
		}
		out = append(out, res)
	}
	return out
}

// candidates returns query parts ("name=value", URL-encoded) built from the
// values of every parameter of res, with modifiers and prefixes.
func candidates(t *testing.T, res map[string]any) []string {
	t.Helper()
	tp := paramsOf(res["resourceType"].(string))
	var out []string
	add := func(name, v string) { out = append(out, url.QueryEscape(name)+"="+url.QueryEscape(v)) }
	for _, p := range tp.list {
		if p.unsupported != "" {
			continue
		}
		nodes, err := p.eval(res)
		if err != nil {
			t.Fatalf("%s: %v", p.code, err)
		}
		add(p.code+":missing", []string{"true", "false"}[len(out)%2])
		switch p.typ {
		case "token":
			for _, tok := range tokensOf(nodes, nil) {
				if tok.code == "" {
					if tok.text != "" {
						add(p.code+":text", prefixOf(tok.text))
					}
					continue
				}
				c := esc(tok.code)
				add(p.code, c)
				add(p.code+":not", c)
				if tok.system != "" {
					add(p.code, esc(tok.system)+"|"+c)
					add(p.code, esc(tok.system)+"|")
				} else {
					add(p.code, "|"+c)
				}
			}
		case "reference":
			for _, r := range refsOf(nodes, nil, nil) {
				add(p.code, esc(r.key))
				if r.typ != "" {
					add(p.code, r.id)
					add(p.code+":"+r.typ, r.id)
					add(p.code, "https://example.org/fhir/"+r.key)
				}
			}
		case "uri":
			for _, u := range urisOf(nodes, nil) {
				add(p.code, esc(u))
				if len(u) >= 2 {
					add(p.code+":below", esc(u[:len(u)/2]))
				}
			}
		case "string":
			for _, s := range stringsOf(nodes, nil) {
				if strings.TrimSpace(s) == "" {
					continue
				}
				add(p.code, esc(prefixOf(s)))
				add(p.code+":exact", esc(s))
			}
		case "date":
			for _, sp := range spansOf(nodes, nil) {
				if sp.lo == minTime {
					continue
				}
				d := time.UnixMicro(sp.lo).UTC().Format("2006-01-02")
				for _, pre := range []string{"", "ge", "le", "gt", "lt", "ne", "sa", "eb", "ap"} {
					add(p.code, pre+d)
				}
			}
		case "number", "quantity":
			var vals []string
			for _, q := range quantitiesOf(nodes, nil) {
				vals = append(vals, q.v.FloatString(2))
			}
			for _, v := range vals {
				for _, pre := range []string{"", "ge", "le", "gt", "lt", "ne", "ap"} {
					add(p.code, pre+v)
				}
			}
		}
	}
	return out
}

func prefixOf(s string) string {
	r := []rune(s)
	return string(r[:min(len(r), 3)])
}

// esc escapes the search separators of a value.
func esc(s string) string {
	return strings.NewReplacer(`\`, `\\`, ",", `\,`, "|", `\|`, "$", `\$`).Replace(s)
}
