package main

import (
	"regexp"
	"slices"
	"strings"
)

// Where Inferno runs the HL7 validator on a whole resource (the $status
// Bundle, the CapabilityStatement, the status Parameters, full-resource
// entries), the port checks the base R4 invariants and required codes
// that such a resource can break.

var (
	dateTimeRE = regexp.MustCompile(`^\d{4}(-\d{2}(-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2}))?)?)?$`)
	methods    = []string{"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"}
	bundleType = []string{"document", "message", "transaction", "transaction-response", "batch", "batch-response", "history", "searchset", "collection"}
)

// checkBundleBase checks a Bundle against the R4 Bundle invariants bdl-1
// to bdl-5, bdl-7, bdl-8 and the required codes of its entries.
func checkBundleBase(f *findings, b map[string]any) {
	typ := jstr(b["type"])
	if !slices.Contains(bundleType, typ) {
		f.errorf("Bundle.type %q is not a bundle-type code", typ)
	}
	if ts, ok := b["timestamp"]; ok && !instantRE.MatchString(jstr(ts)) {
		f.errorf("Bundle.timestamp %v is not an instant", ts)
	}
	if _, ok := b["total"]; ok && typ != "searchset" && typ != "history" {
		f.errorf("bdl-1: total only when a search or history")
	}
	seen := map[string]bool{}
	for i, raw := range jlist(b["entry"]) {
		e := jmap(raw)
		req, resp := jmap(e["request"]), jmap(e["response"])
		if e["search"] != nil && typ != "searchset" {
			f.errorf("bdl-2: entry[%d].search only when a search", i)
		}
		wantReq := typ == "batch" || typ == "transaction" || typ == "history"
		if (req != nil) != wantReq {
			f.errorf("bdl-3: entry[%d].request mandatory for batch/transaction/history, otherwise prohibited (type %s)", i, typ)
		}
		wantResp := typ == "batch-response" || typ == "transaction-response" || typ == "history"
		if (resp != nil) != wantResp {
			f.errorf("bdl-4: entry[%d].response mandatory for batch-response/transaction-response/history, otherwise prohibited (type %s)", i, typ)
		}
		if e["resource"] == nil && req == nil && resp == nil {
			f.errorf("bdl-5: entry[%d] must be a resource unless there's a request or response", i)
		}
		if req != nil && (!slices.Contains(methods, jstr(req["method"])) || jstr(req["url"]) == "") {
			f.errorf("entry[%d].request needs a method code and a url: %v", i, req)
		}
		if resp != nil {
			if _, ok := resp["status"].(string); !ok {
				f.errorf("entry[%d].response.status must be a string: %v", i, resp["status"])
			}
		}
		full := jstr(e["fullUrl"])
		if strings.Contains(full, "/_history/") {
			f.errorf("bdl-8: entry[%d].fullUrl %q is version specific", i, full)
		}
		if full != "" && !strings.HasPrefix(full, "urn:") && !strings.HasPrefix(full, "http") {
			f.errorf("entry[%d].fullUrl %q is not absolute", i, full)
		}
		if r := jmap(e["resource"]); r != nil {
			if full != "" && !strings.HasPrefix(full, "urn:") && jstr(r["id"]) != "" && !strings.HasSuffix(full, "/"+jstr(r["resourceType"])+"/"+jstr(r["id"])) {
				f.errorf("entry[%d].fullUrl %q does not name its resource %v/%v", i, full, r["resourceType"], r["id"])
			}
			if r["resourceType"] == "Parameters" {
				checkParametersBase(f, r)
			}
		}
		key := full + "|" + jstr(jmap(jmap(e["resource"])["meta"])["versionId"])
		if full != "" && seen[key] {
			f.errorf("bdl-7: fullUrl %q appears twice with the same versionId", full)
		}
		seen[key] = true
	}
}

// checkParametersBase checks inv-1: a parameter has a value, a resource
// or parts, and only one of them (parts included).
func checkParametersBase(f *findings, p map[string]any) {
	var walk func(list []any)
	walk = func(list []any) {
		for _, raw := range list {
			pm := jmap(raw)
			if jstr(pm["name"]) == "" {
				f.errorf("a parameter without a name: %v", pm)
			}
			n := 0
			for k := range pm {
				if strings.HasPrefix(k, "value") {
					n++
				}
			}
			if pm["resource"] != nil {
				n++
			}
			if pm["part"] != nil {
				n++
				walk(jlist(pm["part"]))
			}
			if n != 1 {
				f.errorf("inv-1: parameter %v has %d of value, resource and part, want 1", pm["name"], n)
			}
		}
	}
	walk(jlist(p["parameter"]))
}

// checkCapabilityBase checks a CapabilityStatement's required elements and
// the invariants cpb-1, cpb-2, cpb-14, cpb-15.
func checkCapabilityBase(f *findings, cs map[string]any) {
	for _, el := range []string{"status", "date", "kind", "fhirVersion", "format"} {
		if cs[el] == nil {
			f.errorf("CapabilityStatement.%s is required", el)
		}
	}
	if !slices.Contains([]string{"draft", "active", "retired", "unknown"}, jstr(cs["status"])) {
		f.errorf("status %v is not a publication-status code", cs["status"])
	}
	if !dateTimeRE.MatchString(jstr(cs["date"])) {
		f.errorf("date %v is not a dateTime", cs["date"])
	}
	if cs["fhirVersion"] != "4.0.1" {
		f.errorf("fhirVersion %v, want 4.0.1", cs["fhirVersion"])
	}
	kind := jstr(cs["kind"])
	switch {
	case cs["rest"] == nil && cs["messaging"] == nil && cs["document"] == nil:
		f.errorf("cpb-1: a Capability Statement SHALL have at least one of REST, messaging or document element")
	case kind == "instance" && cs["implementation"] == nil:
		f.errorf("cpb-2: if kind = instance, implementation must be present")
	case kind == "capability" && (cs["implementation"] != nil || cs["software"] == nil):
		f.errorf("cpb-14: if kind = capability, implementation must be absent, software must be present")
	case kind == "requirements" && (cs["implementation"] != nil || cs["software"] != nil):
		f.errorf("cpb-15: if kind = requirements, implementation and software must be absent")
	case !slices.Contains([]string{"instance", "capability", "requirements"}, kind):
		f.errorf("kind %q is not a capability-statement-kind code", kind)
	}
	for _, r := range jlist(cs["rest"]) {
		for _, res := range jlist(jmap(r)["resource"]) {
			for _, in := range jlist(jmap(res)["interaction"]) {
				if !slices.Contains([]string{"read", "vread", "update", "patch", "delete", "history-instance", "history-type", "create", "search-type"}, jstr(jmap(in)["code"])) {
					f.errorf("resource %v: interaction %v is not a type-restful-interaction code", jmap(res)["type"], jmap(in)["code"])
				}
			}
			for _, op := range jlist(jmap(res)["operation"]) {
				if jstr(jmap(op)["name"]) == "" || jstr(jmap(op)["definition"]) == "" {
					f.errorf("resource %v: operation %v needs a name and a definition", jmap(res)["type"], op)
				}
			}
		}
	}
}
