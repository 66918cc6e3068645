package smart

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"

	"github.com/fhirsub/fhirsub/conformance/definitions"
	"github.com/fhirsub/fhirsub/conformance/search"
)

// Anonymous is the Subject of the Access granted when authentication is
// off.
const Anonymous = "anonymous"

// Access is what one verified token (or the absence of authentication)
// allows. The zero value allows nothing.
type Access struct {
	// Subject is the token's `sub`, or Anonymous.
	Subject string
	// Patient is the id of the patient in context ("" for none). When set,
	// every resource must lie in that patient's compartment.
	Patient string
	// Scopes are the token's resource scopes.
	Scopes Scopes
	// Claims are the token's claims as decoded (nil for Full and for a
	// decoded Access). Informational only: no decision reads them.
	Claims map[string]any
}

var fullScopes = MustParseScopes("system/*.cruds")

// Full returns the Access used when authentication is off: everything,
// with no patient context.
func Full() *Access { return &Access{Subject: Anonymous, Scopes: fullScopes} }

// effective reports whether scope s counts for a: patient scopes need a
// patient in context.
func (a *Access) effective(s Scope) bool {
	return s.Context != ContextPatient || a.Patient != ""
}

// Allows reports whether some scope grants p on resources of type typ (a
// granular scope counts: its filter is applied per resource by Permits).
func (a *Access) Allows(typ string, p Permission) bool {
	if a == nil {
		return false
	}
	for _, s := range a.Scopes {
		if a.effective(s) && s.covers(typ, p) {
			return true
		}
	}
	return false
}

// AllowsAny reports whether some scope grants p on at least one type.
func (a *Access) AllowsAny(p Permission) bool {
	if a == nil {
		return false
	}
	for _, s := range a.Scopes {
		if a.effective(s) && s.Perms&p != 0 {
			return true
		}
	}
	return false
}

// CanRead reports whether resources of the type may be read in some way
// (read, vread, history or search; also: notifications about them).
func (a *Access) CanRead(resourceType string) bool {
	return a.Allows(resourceType, Read|Search)
}

// CanWrite reports whether resources of the type may be written in some
// way (create, update or delete). Use Allows for one interaction.
func (a *Access) CanWrite(resourceType string) bool {
	return a.Allows(resourceType, Write)
}

// Permits reports whether the decoded resource is subject to p: some scope
// grants p on its type and its filter (if any) matches, and the resource
// lies in the compartment of the patient in context (if any).
func (a *Access) Permits(res map[string]any, p Permission) bool {
	if a == nil || res == nil {
		return false
	}
	typ, _ := res["resourceType"].(string)
	if typ == "" || !a.InCompartment(res) {
		return false
	}
	for _, s := range a.Scopes {
		if a.effective(s) && s.covers(typ, p) && s.matches(res) {
			return true
		}
	}
	return false
}

// CanSee reports whether the decoded resource may be read or searched (so
// also: whether a notification about it may be delivered).
func (a *Access) CanSee(res map[string]any) bool { return a.Permits(res, Read|Search) }

// InCompartment reports whether res lies in the compartment of the patient
// in context; always true without one. A Subscription lies in the
// compartment of the patient of the access it carries (AccessExtension).
func (a *Access) InCompartment(res map[string]any) bool {
	if a == nil {
		return false
	}
	if a.Patient == "" {
		return true
	}
	switch res["resourceType"] {
	case "Patient":
		id, _ := res["id"].(string)
		return id == a.Patient
	case "Subscription":
		return a.subscriptionInCompartment(res)
	}
	return slices.Contains(search.PatientIDs(res), a.Patient)
}

// CanSeePatient reports whether data about the patient with this id may be
// seen: some read scope applies, and no other patient is in context.
func (a *Access) CanSeePatient(patientID string) bool {
	if a == nil || patientID == "" {
		return false
	}
	return (a.Patient == "" || a.Patient == patientID) && a.AllowsAny(Read|Search)
}

// Restricted reports whether resources of the type that the scopes allow
// under p must still be checked one by one (patient in context, or only
// granular scopes apply). When false, Allows(typ, p) decides alone.
func (a *Access) Restricted(typ string, p Permission) bool {
	if a == nil {
		return true
	}
	if a.Patient != "" {
		return true
	}
	for _, s := range a.Scopes {
		if a.effective(s) && s.covers(typ, p) && s.filter == nil {
			return false
		}
	}
	return true
}

// Narrowings returns searches that together find every resource of the type
// that Permits(res, p) may accept: each is a set of extra search
// parameters to AND with the client's query (a compartment reference, a
// granular scope's filter). all is true when no narrowing is needed; an
// empty result with all false means no resource of the type can qualify.
// Callers must still check each result with Permits.
func (a *Access) Narrowings(typ string, p Permission) (alts []url.Values, all bool) {
	if a == nil {
		return nil, false
	}
	var filters []url.Values // nil entry: a scope without a filter
	for _, s := range a.Scopes {
		if !a.effective(s) || !s.covers(typ, p) {
			continue
		}
		if s.filter == nil {
			filters = []url.Values{nil}
			break
		}
		v, _ := url.ParseQuery(s.Query) // parsed once already by ParseScopes
		filters = append(filters, v)
	}
	if len(filters) == 0 {
		return nil, false
	}
	if a.Patient == "" {
		if filters[0] == nil {
			return nil, true
		}
		return filters, false
	}
	var comp []url.Values
	if typ == "Patient" {
		comp = []url.Values{{"_id": {a.Patient}}}
	} else {
		for _, code := range definitions.PatientCompartment(typ) {
			comp = append(comp, url.Values{code: {"Patient/" + a.Patient}})
		}
	}
	return AndEach(filters, comp), false
}

// AndEach is every parameter set of a joined with every set of b: the
// searches that together find what one of a's and one of b's both find.
func AndEach(a, b []url.Values) []url.Values {
	out := make([]url.Values, 0, len(a)*len(b))
	for _, x := range a {
		for _, y := range b {
			m := url.Values{}
			for k, vs := range x {
				m[k] = append(m[k], vs...)
			}
			for k, vs := range y {
				m[k] = append(m[k], vs...)
			}
			out = append(out, m)
		}
	}
	return out
}

// encoded is the persisted form of an Access.
type encoded struct {
	Subject string `json:"sub,omitempty"`
	Patient string `json:"patient,omitempty"`
	Scope   string `json:"scope"`
}

// Encode returns the compact JSON form of the access decisions (subject,
// patient and scopes; not the other claims), for example to persist the
// access of the creator of a Subscription.
func (a *Access) Encode() ([]byte, error) {
	if a == nil {
		return nil, fmt.Errorf("encode access: nil access")
	}
	return json.Marshal(encoded{Subject: a.Subject, Patient: a.Patient, Scope: a.Scopes.String()})
}

// Decode reads the form Encode writes.
func Decode(data []byte) (*Access, error) {
	var e encoded
	if err := json.Unmarshal(data, &e); err != nil {
		return nil, fmt.Errorf("decode access: %w", err)
	}
	ss, err := ParseScopes(e.Scope)
	if err != nil {
		return nil, fmt.Errorf("decode access: %w", err)
	}
	return &Access{Subject: e.Subject, Patient: e.Patient, Scopes: ss}, nil
}
