package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
)

// searchParam is the compact form written to searchparams.json.gz. The
// definitions package decodes the same field names.
type searchParam struct {
	Code        string      `json:"code"`
	Name        string      `json:"name,omitempty"`
	URL         string      `json:"url"`
	Version     string      `json:"version,omitempty"`
	Type        string      `json:"type"`
	Expression  string      `json:"expression,omitempty"`
	Base        []string    `json:"base"`
	Target      []string    `json:"target,omitempty"`
	Modifiers   []string    `json:"modifier,omitempty"`
	Comparators []string    `json:"comparator,omitempty"`
	Components  []component `json:"component,omitempty"`
	MultipleOr  *bool       `json:"multipleOr,omitempty"`
	MultipleAnd *bool       `json:"multipleAnd,omitempty"`
}

type component struct {
	Definition string `json:"definition"`
	Expression string `json:"expression"`
}

func convertSearchParams(entries []struct {
	Resource json.RawMessage `json:"resource"`
}) ([]searchParam, error) {
	out := make([]searchParam, 0, len(entries))
	for i, e := range entries {
		var r struct {
			ResourceType string `json:"resourceType"`
			searchParam
		}
		if err := json.Unmarshal(e.Resource, &r); err != nil {
			return nil, fmt.Errorf("search parameter entry %d: %w", i, err)
		}
		if r.ResourceType != "SearchParameter" {
			return nil, fmt.Errorf("search parameter entry %d: resourceType %q", i, r.ResourceType)
		}
		p := r.searchParam
		if p.Code == "" || p.URL == "" || p.Type == "" || len(p.Base) == 0 {
			return nil, fmt.Errorf("search parameter entry %d (%s): code, url, type or base missing", i, p.URL)
		}
		if p.Version == fhirVersion {
			p.Version = "" // only the exceptions are kept
		}
		sort.Strings(p.Target)
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].URL < out[j].URL })
	return out, nil
}

type compartmentDefinition struct {
	ResourceType string `json:"resourceType"`
	Code         string `json:"code"`
	Resource     []struct {
		Code  string   `json:"code"`
		Param []string `json:"param"`
	} `json:"resource"`
}

func (cd *compartmentDefinition) params() map[string][]string {
	out := map[string][]string{}
	for _, r := range cd.Resource {
		if len(r.Param) > 0 {
			out[r.Code] = r.Param
		}
	}
	return out
}

// convertCompartment returns, per resource type, the search parameter codes
// that link it to a Patient. It takes the Patient CompartmentDefinition as
// HL7 published it, found in profiles-resources.json; the package's separate
// compartmentdefinition-patient.json carries Medplum edits, which are listed
// as notes.
func convertCompartment(src string) (map[string][]string, []string, error) {
	var b struct {
		Entry []struct {
			Resource json.RawMessage `json:"resource"`
		} `json:"entry"`
	}
	if err := readJSON(filepath.Join(src, "profiles-resources.json"), &b); err != nil {
		return nil, nil, err
	}
	var hl7 map[string][]string
	for _, e := range b.Entry {
		var cd compartmentDefinition
		if err := json.Unmarshal(e.Resource, &cd); err != nil {
			continue // another resource type whose fields do not fit
		}
		if cd.ResourceType == "CompartmentDefinition" && cd.Code == "Patient" {
			hl7 = cd.params()
		}
	}
	if hl7 == nil {
		return nil, nil, fmt.Errorf("profiles-resources.json: no Patient CompartmentDefinition")
	}
	var medplum compartmentDefinition
	if err := readJSON(filepath.Join(src, "compartmentdefinition-patient.json"), &medplum); err != nil {
		return nil, nil, err
	}
	if medplum.ResourceType != "CompartmentDefinition" || medplum.Code != "Patient" {
		return nil, nil, fmt.Errorf("compartmentdefinition-patient.json: not the Patient CompartmentDefinition")
	}
	var notes []string
	mp := medplum.params()
	for _, t := range sortedKeys(hl7, mp) {
		if !slices.Equal(hl7[t], mp[t]) {
			notes = append(notes, fmt.Sprintf("Patient compartment %s: HL7 %v kept, compartmentdefinition-patient.json has %v", t, hl7[t], mp[t]))
		}
	}
	return hl7, notes, nil
}

func sortedKeys(ms ...map[string][]string) []string {
	var out []string
	for _, m := range ms {
		for k := range m {
			if !slices.Contains(out, k) {
				out = append(out, k)
			}
		}
	}
	sort.Strings(out)
	return out
}
