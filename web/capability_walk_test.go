package web_test

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/fhirsub/fhirsub/conformance/definitions"
)

// sampleValue is a valid search value of a parameter type; a composite
// joins a sample of each component.
func sampleValue(typ, definition string) string {
	switch typ {
	case "number", "quantity":
		return "1"
	case "date":
		return "ge2024-01-01"
	case "uri":
		return "http://example.org/x"
	case "reference":
		return "x"
	case "composite":
		d := definitions.SearchParamByURL(definition)
		if d == nil {
			return ""
		}
		parts := make([]string, len(d.Components))
		for i, c := range d.Components {
			cd := definitions.SearchParamByURL(c.Definition)
			if cd == nil {
				return ""
			}
			parts[i] = sampleValue(cd.Type, c.Definition)
		}
		return strings.Join(parts, "$")
	}
	return "x"
}

// TestCapabilityStatementIsHonest walks every search parameter and
// interaction the CapabilityStatement advertises and uses each: nothing
// advertised is refused, and the parameters the server refuses are not
// advertised.
func TestCapabilityStatementIsHonest(t *testing.T) {
	s := mustServer(t)
	cs := s.do("GET", "/metadata", nil).wantStatus(t, http.StatusOK)
	rest := cs.JSON["rest"].([]any)[0].(map[string]any)
	searches, refused := 0, 0
	for _, raw := range rest["resource"].([]any) {
		r := raw.(map[string]any)
		typ := r["type"].(string)
		incs, _ := r["searchInclude"].([]any)
		for _, inc := range incs {
			searches++
			q := "_include=" + url.QueryEscape(inc.(string))
			if resp := s.do("GET", "/"+typ+"?"+q, nil); resp.Status != http.StatusOK {
				refused++
				t.Errorf("advertised include %s?%s refused: %d %s", typ, q, resp.Status, resp.Body)
			}
		}
		params, _ := r["searchParam"].([]any)
		for _, rp := range params {
			p := rp.(map[string]any)
			name, ptype, def := p["name"].(string), p["type"].(string), str(p, "definition")
			switch name {
			case "_content", "_query", "_text", "_filter", "_list", "_has", "_type":
				t.Errorf("%s advertises %s, which the server refuses", typ, name)
			}
			for _, q := range []string{
				url.QueryEscape(name) + "=" + url.QueryEscape(sampleValue(ptype, def)),
				url.QueryEscape(name+":missing") + "=true",
			} {
				searches++
				resp := s.do("GET", "/"+typ+"?"+q, nil)
				if resp.Status != http.StatusOK {
					refused++
					t.Errorf("advertised search %s?%s refused: %d %s", typ, q, resp.Status, resp.Body)
				}
			}
		}
	}
	t.Logf("%d advertised searches exercised, %d refused", searches, refused)
	if searches < 1000 || refused > 0 {
		t.Fatalf("%d searches, %d refused", searches, refused)
	}

	// Every advertised interaction, on Patient.
	var patient map[string]any
	for _, raw := range rest["resource"].([]any) {
		if r := raw.(map[string]any); r["type"] == "Patient" {
			patient = r
		}
	}
	if patient == nil {
		t.Fatal("Patient is not advertised")
	}
	id := str(s.do("POST", "/Patient", patientWithID("Cap", "cap1")).wantStatus(t, http.StatusCreated).JSON, "id")
	body := patientWithID("Cap", "cap1")
	body["id"] = id
	exercise := map[string]func(){
		"create": func() { s.do("POST", "/Patient", patient2("Cap2")).wantStatus(t, http.StatusCreated) },
		"read":   func() { s.do("GET", "/Patient/"+id, nil).wantStatus(t, http.StatusOK) },
		"vread":  func() { s.do("GET", "/Patient/"+id+"/_history/1", nil).wantStatus(t, http.StatusOK) },
		"update": func() { s.do("PUT", "/Patient/"+id, body).wantStatus(t, http.StatusOK) },
		"patch": func() {
			s.do("PATCH", "/Patient/"+id, `[{"op":"add","path":"/active","value":true}]`, "Content-Type", "application/json-patch+json").wantStatus(t, http.StatusOK)
		},
		"history-instance": func() { s.do("GET", "/Patient/"+id+"/_history", nil).wantStatus(t, http.StatusOK) },
		"history-type":     func() { s.do("GET", "/Patient/_history", nil).wantStatus(t, http.StatusOK) },
		"search-type":      func() { s.do("GET", "/Patient?identifier=cap1", nil).wantStatus(t, http.StatusOK) },
		"delete": func() {
			tmp := str(s.do("POST", "/Patient", patient2("Gone")).wantStatus(t, http.StatusCreated).JSON, "id")
			s.do("DELETE", "/Patient/"+tmp, nil).wantStatus(t, http.StatusOK)
		},
		"transaction": func() {
			s.do("POST", "/", map[string]any{"resourceType": "Bundle", "type": "transaction", "entry": []any{
				map[string]any{"resource": patient2("Tx"), "request": map[string]any{"method": "POST", "url": "Patient"}}}}).wantStatus(t, http.StatusOK)
		},
		"batch": func() {
			s.do("POST", "/", map[string]any{"resourceType": "Bundle", "type": "batch", "entry": []any{
				map[string]any{"resource": map[string]any{"resourceType": "Binary", "contentType": "application/json-patch+json",
					"data": base64.StdEncoding.EncodeToString([]byte(`[{"op":"add","path":"/active","value":false}]`))},
					"request": map[string]any{"method": "PATCH", "url": "Patient/" + id}}}}).wantStatus(t, http.StatusOK)
		},
		"history-system": func() { s.do("GET", "/_history", nil).wantStatus(t, http.StatusOK) },
		"search-system": func() {
			r := s.do("GET", "/?_id="+id, nil).wantStatus(t, http.StatusOK)
			if str(r.JSON, "total") != "1" {
				t.Errorf("GET /?_id=%s: %s", id, r.Body)
			}
		},
	}
	var codes []any
	codes = append(codes, patient["interaction"].([]any)...)
	codes = append(codes, rest["interaction"].([]any)...)
	for _, c := range codes {
		code := c.(map[string]any)["code"].(string)
		fn := exercise[code]
		if fn == nil {
			t.Errorf("interaction %s is advertised but this test does not know how to use it", code)
			continue
		}
		t.Run(code, func(t *testing.T) { fn() })
		delete(exercise, code)
	}
	for code := range exercise {
		t.Errorf("interaction %s is served but not advertised", code)
	}
	// Every advertised compartment answers its search.
	comps, _ := rest["compartment"].([]any)
	if len(comps) != 1 || comps[0] != "http://hl7.org/fhir/CompartmentDefinition/patient" {
		t.Errorf("rest.compartment %v, want the Patient compartment the server searches", comps)
	}
	if r := s.do("GET", "/Patient/"+id+"/Observation", nil).wantStatus(t, http.StatusOK); str(r.JSON, "type") != "searchset" {
		t.Errorf("the Patient compartment search: %s", r.Body)
	}

	// Every advertised patch format, and the two the server takes.
	patches := map[string]any{
		"application/json-patch+json": `[{"op":"add","path":"/active","value":true}]`,
		"application/fhir+json": map[string]any{"resourceType": "Parameters", "parameter": []any{map[string]any{
			"name": "operation", "part": []any{
				map[string]any{"name": "type", "valueCode": "replace"},
				map[string]any{"name": "path", "valueString": "Patient.active"},
				map[string]any{"name": "value", "valueBoolean": false},
			}}}},
	}
	formats, _ := cs.JSON["patchFormat"].([]any)
	for _, f := range formats {
		doc, ok := patches[f.(string)]
		if !ok {
			t.Errorf("patchFormat %q is advertised but this test does not know how to use it", f)
			continue
		}
		s.do("PATCH", "/Patient/"+id, doc, "Content-Type", f.(string)).wantStatus(t, http.StatusOK)
		delete(patches, f.(string))
	}
	for f := range patches {
		t.Errorf("patch format %s is served but not advertised in patchFormat", f)
	}
	if patient["conditionalCreate"] == true {
		s.do("POST", "/Patient", patientWithID("Cap", "cap1"), "If-None-Exist", "identifier=cap1").wantStatus(t, http.StatusOK)
	}
	if patient["conditionalUpdate"] == true {
		s.do("PUT", "/Patient?identifier=cap1", patientWithID("Cap", "cap1")).wantStatus(t, http.StatusOK)
	}
	if patient["conditionalDelete"] == "single" {
		s.do("DELETE", "/Patient?identifier=cap1", nil).wantOutcome(t, http.StatusOK, "deleted 1")
	}
}

func patient2(family string) map[string]any { return patient(family) }
