package smart

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/fhirsub/fhirsub/conformance/definitions"
	"github.com/fhirsub/fhirsub/conformance/search"
)

// Permission is a set of the SMART v2 interactions c r u d s.
type Permission uint8

// The permissions a scope may grant.
const (
	// Create allows create (POST, and update-as-create).
	Create Permission = 1 << iota
	// Read allows read, vread and instance history.
	Read
	// Update allows update.
	Update
	// Delete allows delete.
	Delete
	// Search allows type and system search and history.
	Search

	// Write is v1 `write`: create, update and delete.
	Write = Create | Update | Delete
	// All is v1 `*` and v2 `cruds`.
	All = Create | Read | Update | Delete | Search
)

// String returns the permission in v2 letters, e.g. "rs".
func (p Permission) String() string {
	var b strings.Builder
	for i, l := range "cruds" {
		if p&(1<<i) != 0 {
			b.WriteRune(l)
		}
	}
	return b.String()
}

// Scope contexts.
const (
	ContextPatient = "patient"
	ContextUser    = "user"
	ContextSystem  = "system"
)

// ErrInvalidScope is wrapped by every error ParseScopes returns.
var ErrInvalidScope = errors.New("invalid SMART scope")

// Scope is one parsed SMART resource scope.
type Scope struct {
	// Context is "patient", "user" or "system".
	Context string
	// Type is a resource type or "*".
	Type string
	// Perms are the interactions granted.
	Perms Permission
	// Query is the raw search of a v2 granular scope ("" for none).
	Query string

	raw    string
	filter *search.Query
}

// String returns the scope as it was written.
func (s Scope) String() string { return s.raw }

// covers reports whether the scope grants p on resources of type typ,
// ignoring any granular filter.
func (s Scope) covers(typ string, p Permission) bool {
	return s.Perms&p != 0 && (s.Type == "*" || s.Type == typ)
}

// matches reports whether the scope's granular filter accepts res; a scope
// without a filter accepts everything. Evaluation errors reject.
func (s Scope) matches(res map[string]any) bool {
	if s.filter == nil {
		return true
	}
	ok, err := s.filter.Match(res)
	return err == nil && ok
}

// Scopes are the resource scopes of a token, in the order given.
type Scopes []Scope

// String joins the scopes with spaces, the form ParseScopes reads.
func (ss Scopes) String() string {
	parts := make([]string, len(ss))
	for i, s := range ss {
		parts[i] = s.raw
	}
	return strings.Join(parts, " ")
}

// maxScopes bounds the work one scope string can cause.
const maxScopes = 256

// ParseScopes parses a space-separated scope string (the OAuth `scope`
// claim). Scopes that are not resource scopes (openid, fhirUser, launch,
// launch/patient, offline_access, profile, …) are skipped. A word that
// starts with "patient/", "user/" or "system/" must be a valid v1 or v2
// resource scope; otherwise the error wraps ErrInvalidScope and names it.
func ParseScopes(s string) (Scopes, error) {
	words := strings.Fields(s)
	if len(words) > maxScopes {
		return nil, fmt.Errorf("%w: %d scopes, at most %d are accepted", ErrInvalidScope, len(words), maxScopes)
	}
	var out Scopes
	for _, w := range words {
		ctx, _, found := strings.Cut(w, "/")
		if !found || ctx != ContextPatient && ctx != ContextUser && ctx != ContextSystem {
			continue
		}
		sc, err := parseScope(w)
		if err != nil {
			return nil, err
		}
		out = append(out, sc)
	}
	return out, nil
}

// MustParseScopes is ParseScopes for constant scope strings; it panics on
// error.
func MustParseScopes(s string) Scopes {
	ss, err := ParseScopes(s)
	if err != nil {
		panic(err)
	}
	return ss
}

func parseScope(w string) (Scope, error) {
	bad := func(format string, args ...any) (Scope, error) {
		return Scope{}, fmt.Errorf("%w %q: %s", ErrInvalidScope, w, fmt.Sprintf(format, args...))
	}
	for _, r := range w {
		if r < 0x21 || r > 0x7e || r == '"' || r == '\\' {
			return bad("scopes are printable ASCII without quotes or backslashes (RFC 6749 section 3.3)")
		}
	}
	ctx, rest, _ := strings.Cut(w, "/")
	rest, query, hasQuery := strings.Cut(rest, "?")
	typ, perm, ok := strings.Cut(rest, ".")
	if !ok {
		return bad("want context/Type.permissions")
	}
	if typ != "*" && !definitions.IsResourceType(typ) && !definitions.IsExtraType(typ) {
		return bad("unknown resource type %q", typ)
	}
	sc := Scope{Context: ctx, Type: typ, raw: w}
	switch perm {
	case "read":
		sc.Perms = Read | Search
	case "write":
		sc.Perms = Write
	case "*":
		sc.Perms = All
	default:
		p, err := parseLetters(perm)
		if err != nil {
			return bad("%v", err)
		}
		sc.Perms = p
	}
	if hasQuery {
		if len(perm) > 0 && (perm == "read" || perm == "write" || perm == "*") {
			return bad("a search filter needs v2 permissions (c r u d s)")
		}
		if typ == "*" {
			return bad("a search filter needs a resource type, not *")
		}
		vals, err := url.ParseQuery(query)
		if err != nil || len(vals) == 0 {
			return bad("malformed search filter %q", query)
		}
		q, err := search.Parse(typ, vals)
		if err != nil {
			return bad("search filter: %v", err)
		}
		if q.Count != 0 || q.Offset != 0 || len(q.Shape().Sort) > 0 {
			return bad("search filter may not page or sort")
		}
		sc.Query, sc.filter = query, q
	}
	return sc, nil
}

// parseLetters reads v2 permissions: a non-empty subsequence of "cruds".
func parseLetters(perm string) (Permission, error) {
	if perm == "" {
		return 0, errors.New("no permissions after the dot")
	}
	var p Permission
	next := 0
	for _, r := range perm {
		i := strings.IndexRune("cruds", r)
		if i < 0 {
			return 0, fmt.Errorf("permission %q is none of read, write, *, c, r, u, d, s", perm)
		}
		if i < next {
			return 0, fmt.Errorf("permissions %q must be in the order c r u d s, each once", perm)
		}
		p |= 1 << i
		next = i + 1
	}
	return p, nil
}
