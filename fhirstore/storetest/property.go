package storetest

import (
	"fmt"
	"math/rand"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fhirsub/fhirsub/conformance/search"
	"github.com/fhirsub/fhirsub/fhirstore"
)

// Value pools of the property test. Small pools make queries hit often.
var (
	propFamilies = []string{"Smith", "Smythe", "Jones", "Brown", "O'Neil", "Núñez", "van der Berg", "Li"}
	propGivens   = []string{"John", "Jane", "Ann", "Anne", "Zoë", "Émile"}
	propGenders  = []string{"male", "female", "other", "unknown"}
	propCities   = []string{"Boston", "Paris", "São Paulo", "Bern"}
	propIDSys    = []string{"http://hosp.example/a", "http://hosp.example/b"}
	propCodeSys  = []string{"http://loinc.org", "http://snomed.info/sct"}
	propCodes    = []string{"1234-5", "2345-6", "999", "8867-4"}
	propStatuses = []string{"final", "preliminary", "amended", "cancelled"}
	propCats     = []string{"laboratory", "vital-signs"}
	propUnits    = []string{"mmol/L", "mg/dL"}
	propPrefixes = []string{"", "eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap"}
)

// testSearchProperty checks that Store.Search (database narrowing plus
// in-memory decision) returns exactly what q.Match accepts among all
// current resources, in q's order, for random resources and queries.
func (s *suite) testSearchProperty(t *testing.T) {
	seed := s.opts.Seed
	if seed == 0 {
		seed = time.Now().UnixNano()
	}
	t.Logf("property test seed %d (set RunOptions.Seed to replay)", seed)
	rng := rand.New(rand.NewSource(seed))
	st := s.store(t)
	ctx := ctxWithin(t, 3*time.Minute)
	p := &propGen{rng: rng, live: map[string]map[string]any{}}

	start := fhirstore.Now()
	for i := range 160 {
		switch r := rng.Intn(10); {
		case r < 7 || len(p.live) < 5:
			typ, id := "Patient", fmt.Sprintf("p%d", i)
			b := p.patient()
			if rng.Intn(2) == 0 {
				typ, id, b = "Observation", fmt.Sprintf("o%d", i), p.observation()
			}
			res, _ := mustUpdate(t, st, id, b, "")
			p.put(typ, res)
		case r < 9:
			key := p.someKey()
			typ, id, _ := strings.Cut(key, "/")
			b := p.patient()
			if typ == "Observation" {
				b = p.observation()
			}
			res, _ := mustUpdate(t, st, id, b, "")
			p.put(typ, res)
		default:
			key := p.someKey()
			typ, id, _ := strings.Cut(key, "/")
			mustDelete(t, st, typ, id)
			delete(p.live, key)
		}
		if i == 80 {
			time.Sleep(5 * time.Millisecond)
			p.mid = fhirstore.Now()
			time.Sleep(5 * time.Millisecond)
		}
	}
	p.start = start

	const queries = 400
	var rejected, nonEmpty int
	for range queries {
		typ := "Patient"
		if rng.Intn(2) == 0 {
			typ = "Observation"
		}
		params := p.query(typ)
		paged := rng.Intn(4) == 0
		if paged {
			params.Set("_count", strconv.Itoa(1+rng.Intn(7)))
			params.Set("_offset", strconv.Itoa(rng.Intn(10)))
		} else {
			params.Set("_count", strconv.Itoa(fhirstore.MaxCount))
		}
		q, err := search.Parse(typ, params)
		if err != nil {
			rejected++
			t.Logf("query %s?%s rejected by Parse: %v", typ, params.Encode(), err)
			continue
		}
		want, err := p.expected(q)
		if err != nil {
			t.Fatalf("in-memory %s?%s: %v", typ, params.Encode(), err)
		}
		page, err := st.Search(ctx, q)
		if err != nil {
			t.Fatalf("Search %s?%s: %v", typ, params.Encode(), err)
		}
		got := make([]string, len(page.Resources))
		for i, r := range page.Resources {
			got[i] = r.ID
		}
		total := len(want)
		if total > 0 {
			nonEmpty++
		}
		lo, hi := fhirstore.PageBounds(total, q.Count, q.Offset)
		if page.Total != total || !equalStrings(got, want[lo:hi]) {
			t.Errorf("%s?%s (seed %d):\n store  %v (total %d)\n memory %v (total %d)",
				typ, params.Encode(), seed, got, page.Total, want[lo:hi], total)
		}
	}
	t.Logf("%d resources live, %d queries: %d compared (%d with results), %d rejected by Parse",
		len(p.live), queries, queries-rejected, nonEmpty, rejected)
	if rejected > queries/4 {
		t.Errorf("Parse rejected %d of %d generated queries; the generator is out of step with conformance/search", rejected, queries)
	}
	if nonEmpty < queries/10 {
		t.Errorf("only %d of %d queries had results; the generator is too selective", nonEmpty, queries)
	}
}

// propGen generates resources and queries and keeps the current bodies.
type propGen struct {
	rng        *rand.Rand
	live       map[string]map[string]any // "Type/id" → decoded stored body
	start, mid time.Time
}

func (p *propGen) put(typ string, res *fhirstore.Resource) {
	b, err := fhirstore.Decode(res.Body)
	if err != nil {
		panic(fmt.Sprintf("stored body of %s/%s: %v", typ, res.ID, err))
	}
	p.live[typ+"/"+res.ID] = b
}

func (p *propGen) pick(from []string) string { return from[p.rng.Intn(len(from))] }

func (p *propGen) someKey() string {
	keys := make([]string, 0, len(p.live))
	for k := range p.live {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys[p.rng.Intn(len(keys))]
}

// some returns a random live body of typ, or nil.
func (p *propGen) some(typ string) map[string]any {
	var keys []string
	for k := range p.live {
		if strings.HasPrefix(k, typ+"/") {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	sort.Strings(keys)
	return p.live[keys[p.rng.Intn(len(keys))]]
}

func (p *propGen) date() string {
	y, m, d := 1930+p.rng.Intn(90), 1+p.rng.Intn(12), 1+p.rng.Intn(28)
	switch p.rng.Intn(4) {
	case 0:
		return fmt.Sprintf("%04d", y)
	case 1:
		return fmt.Sprintf("%04d-%02d", y, m)
	default:
		return fmt.Sprintf("%04d-%02d-%02d", y, m, d)
	}
}

func (p *propGen) dateTime() string {
	if p.rng.Intn(3) == 0 {
		return fmt.Sprintf("2024-%02d-%02d", 1+p.rng.Intn(12), 1+p.rng.Intn(28))
	}
	return fmt.Sprintf("2024-%02d-%02dT%02d:%02d:00Z", 1+p.rng.Intn(12), 1+p.rng.Intn(28), p.rng.Intn(24), p.rng.Intn(60))
}

func (p *propGen) patient() map[string]any {
	b := map[string]any{"resourceType": "Patient"}
	if p.rng.Intn(6) > 0 {
		name := map[string]any{"family": p.pick(propFamilies)}
		if p.rng.Intn(2) == 0 {
			name["given"] = []any{p.pick(propGivens)}
		}
		b["name"] = []any{name}
	}
	if p.rng.Intn(5) > 0 {
		b["gender"] = p.pick(propGenders)
	}
	if p.rng.Intn(4) > 0 {
		b["birthDate"] = p.date()
	}
	if p.rng.Intn(2) == 0 {
		b["identifier"] = []any{map[string]any{"system": p.pick(propIDSys), "value": fmt.Sprint("MRN", p.rng.Intn(5))}}
	}
	if p.rng.Intn(2) == 0 {
		b["active"] = p.rng.Intn(2) == 0
	}
	if p.rng.Intn(3) == 0 {
		b["generalPractitioner"] = []any{map[string]any{"reference": fmt.Sprint("Practitioner/dr", p.rng.Intn(3))}}
	}
	if p.rng.Intn(3) == 0 {
		b["address"] = []any{map[string]any{"city": p.pick(propCities)}}
	}
	return b
}

func (p *propGen) observation() map[string]any {
	coding := []any{map[string]any{"system": p.pick(propCodeSys), "code": p.pick(propCodes)}}
	if p.rng.Intn(4) == 0 {
		coding = append(coding, map[string]any{"system": p.pick(propCodeSys), "code": p.pick(propCodes)})
	}
	b := map[string]any{
		"resourceType": "Observation",
		"status":       p.pick(propStatuses),
		"code":         map[string]any{"coding": coding},
	}
	if p.rng.Intn(5) > 0 {
		b["subject"] = map[string]any{"reference": fmt.Sprint("Patient/p", p.rng.Intn(12))}
	}
	if p.rng.Intn(2) == 0 {
		b["category"] = []any{map[string]any{"coding": []any{map[string]any{
			"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": p.pick(propCats)}}}}
	}
	switch p.rng.Intn(4) {
	case 0:
		b["effectivePeriod"] = map[string]any{"start": p.dateTime(), "end": "2024-12-31T00:00:00Z"}
	case 1:
	default:
		b["effectiveDateTime"] = p.dateTime()
	}
	if p.rng.Intn(3) > 0 {
		unit := p.pick(propUnits)
		b["valueQuantity"] = map[string]any{
			"value": jsonNumber(fmt.Sprintf("%d.%d", p.rng.Intn(200), p.rng.Intn(10))),
			"unit":  unit, "system": "http://unitsofmeasure.org", "code": unit,
		}
	}
	return b
}

// query builds one to three random clauses for typ, with values taken from
// a live resource of typ half of the time.
func (p *propGen) query(typ string) url.Values {
	params := url.Values{}
	for range 1 + p.rng.Intn(3) {
		name, value := p.clause(typ)
		if p.rng.Intn(4) == 0 { // an OR of two values
			_, v2 := p.clauseFor(typ, name)
			value += "," + v2
		}
		params.Add(name, value)
	}
	if p.rng.Intn(3) == 0 {
		sorts := map[string][]string{
			"Patient":     {"family", "birthdate", "gender", "_id", "_lastUpdated", "identifier", "given"},
			"Observation": {"date", "status", "code", "value-quantity", "subject", "_lastUpdated"},
		}[typ]
		key := p.pick(sorts)
		if p.rng.Intn(2) == 0 {
			key = "-" + key
		}
		params.Set("_sort", key)
	}
	return params
}

func (p *propGen) clause(typ string) (string, string) {
	names := map[string][]string{
		"Patient": {"family", "family:exact", "family:contains", "name", "given", "gender", "gender:not",
			"birthdate", "birthdate:missing", "identifier", "active", "general-practitioner", "address-city", "_id", "_lastUpdated"},
		"Observation": {"code", "status", "status:not", "category", "subject", "patient", "date", "value-quantity",
			"subject:missing", "_id", "_lastUpdated"},
	}[typ]
	return p.clauseFor(typ, p.pick(names))
}

// clauseFor returns the parameter name (possibly with modifier) and one value.
func (p *propGen) clauseFor(typ, name string) (string, string) {
	src := p.some(typ)
	own := src != nil && p.rng.Intn(2) == 0
	str := func(path ...string) string {
		if !own {
			return ""
		}
		var cur any = src
		for _, k := range path {
			switch c := cur.(type) {
			case map[string]any:
				cur = c[k]
			case []any:
				if len(c) == 0 {
					return ""
				}
				cur = c[0]
				if m, ok := cur.(map[string]any); ok {
					cur = m[k]
				}
			}
		}
		if arr, ok := cur.([]any); ok && len(arr) > 0 {
			cur = arr[0]
		}
		s, _ := cur.(string)
		return s
	}
	or := func(s, fallback string) string {
		if s != "" {
			return s
		}
		return fallback
	}
	base, modifier, _ := strings.Cut(name, ":")
	switch base {
	case "family", "name":
		v := or(str("name", "family"), p.pick(propFamilies))
		if modifier != "exact" && p.rng.Intn(2) == 0 {
			v = strings.ToLower(v[:1+p.rng.Intn(len(v))])
		}
		return name, v
	case "given":
		return name, or(str("name", "given"), p.pick(propGivens))
	case "gender":
		return name, or(str("gender"), p.pick(propGenders))
	case "birthdate":
		if modifier == "missing" {
			return name, p.pick([]string{"true", "false"})
		}
		return name, p.pick(propPrefixes) + or(str("birthDate"), p.date())
	case "identifier":
		sys, val := or(str("identifier", "system"), p.pick(propIDSys)), or(str("identifier", "value"), fmt.Sprint("MRN", p.rng.Intn(6)))
		return name, p.pick([]string{sys + "|" + val, val, sys + "|"})
	case "active":
		return name, p.pick([]string{"true", "false"})
	case "general-practitioner":
		return name, or(str("generalPractitioner", "reference"), fmt.Sprint("Practitioner/dr", p.rng.Intn(4)))
	case "address-city":
		return name, or(str("address", "city"), p.pick(propCities))
	case "code":
		sys, code := or(str("code", "coding", "system"), p.pick(propCodeSys)), or(str("code", "coding", "code"), p.pick(propCodes))
		return name, p.pick([]string{sys + "|" + code, code})
	case "status":
		return name, or(str("status"), p.pick(propStatuses))
	case "category":
		return name, p.pick(propCats)
	case "subject", "patient":
		if modifier == "missing" {
			return name, p.pick([]string{"true", "false"})
		}
		return name, or(str("subject", "reference"), fmt.Sprint("Patient/p", p.rng.Intn(14)))
	case "date":
		return name, p.pick(propPrefixes) + or(str("effectiveDateTime"), p.dateTime())
	case "value-quantity":
		prefix := p.pick([]string{"", "gt", "lt", "ge", "le", "ne"})
		v := fmt.Sprintf("%d.%d", p.rng.Intn(200), p.rng.Intn(10))
		unit := p.pick(propUnits)
		return name, prefix + v + p.pick([]string{"", "||" + unit, "|http://unitsofmeasure.org|" + unit})
	case "_id":
		if own {
			if id, ok := src["id"].(string); ok {
				return name, id
			}
		}
		return name, fmt.Sprint("p", p.rng.Intn(200))
	case "_lastUpdated":
		at := p.mid
		if p.rng.Intn(3) == 0 {
			at = p.start
		}
		return name, p.pick([]string{"gt", "lt", "ge", "le"}) + fhirstore.FormatInstant(at)
	}
	panic("storetest: no generator for search parameter " + name)
}

// expected filters the live bodies of q.Type with q.Match and sorts them
// by q.Less, then id: the reference result.
func (p *propGen) expected(q *search.Query) ([]string, error) {
	type hit struct {
		id   string
		body map[string]any
	}
	var hits []hit
	for key, b := range p.live {
		typ, id, _ := strings.Cut(key, "/")
		if typ != q.Type {
			continue
		}
		ok, err := q.Match(b)
		if err != nil {
			return nil, err
		}
		if ok {
			hits = append(hits, hit{id, b})
		}
	}
	sort.Slice(hits, func(i, j int) bool {
		if q.Less(hits[i].body, hits[j].body) {
			return true
		}
		if q.Less(hits[j].body, hits[i].body) {
			return false
		}
		return hits[i].id < hits[j].id
	})
	ids := make([]string, len(hits))
	for i, h := range hits {
		ids[i] = h.id
	}
	return ids, nil
}
