package smart

import "slices"

// AccessExtension is the URL of fhirsub's server-managed extension on the
// root of a Subscription: its valueString is the Encode form of the access
// of the token that created the subscription. Notifications of the
// subscription are limited to what that access may see, and a Subscription
// lies in the compartment of that access's patient (see InCompartment).
const AccessExtension = "https://fhirsub.org/StructureDefinition/subscription-access"

// readPerms are the permissions that make a resource visible.
const readPerms = Read | Search

// Covers reports whether a may see at least everything b may see: a has no
// patient in context or the same one as b, and every reading scope of b
// (read or search) is granted by a scope of a on the same or every type,
// without a granular filter or with the same one. Write permissions are not
// compared. A nil b is covered by any non-nil a.
func (a *Access) Covers(b *Access) bool {
	if a == nil {
		return false
	}
	if b == nil {
		return true
	}
	if a.Patient != "" && a.Patient != b.Patient {
		return false
	}
	for _, s := range b.Scopes {
		p := s.Perms & readPerms
		if !b.effective(s) || p == 0 {
			continue
		}
		granted := slices.ContainsFunc(a.Scopes, func(c Scope) bool {
			return a.effective(c) && c.Perms&p == p && (c.Type == "*" || c.Type == s.Type) &&
				(c.filter == nil || c.Type == s.Type && c.Query == s.Query)
		})
		if !granted {
			return false
		}
	}
	return true
}

// CanSeeCompartment reports, for a resource that is not at hand (a
// deletion whose last version was not loaded, an event known only by its
// type and patients), whether a resource of type typ lying in the
// compartments of exactly these patients may be seen: a scope without a
// granular filter must allow reading the type, and the patient in context,
// if any, must be among them. Granular scopes need the resource itself, so
// without it they refuse. When the resource is available, use CanSee.
func (a *Access) CanSeeCompartment(typ string, patients []string) bool {
	if a == nil {
		return false
	}
	if a.Patient != "" && !slices.Contains(patients, a.Patient) {
		return false
	}
	for _, s := range a.Scopes {
		if a.effective(s) && s.covers(typ, readPerms) && s.filter == nil {
			return true
		}
	}
	return false
}

// subscriptionInCompartment decides the compartment of a Subscription,
// which the Patient CompartmentDefinition does not place: it lies in the
// compartment of the patient of the access it carries (AccessExtension).
// A Subscription without that extension is a submission not yet stamped by
// the server (which stamps it with the submitter's access and decides who
// may change it) or one stored before the extension existed: it is treated
// as belonging to the caller.
func (a *Access) subscriptionInCompartment(res map[string]any) bool {
	raw, found := AccessOf(res)
	if !found {
		return true
	}
	owner, err := Decode([]byte(raw))
	return err == nil && owner.Patient == a.Patient
}

// AccessOf returns the valueString of the AccessExtension on the root of a
// decoded resource, and whether there is one. More than one, or one
// without a string value, gives ("", true): present but undecodable.
func AccessOf(res map[string]any) (string, bool) {
	exts, _ := res["extension"].([]any)
	value, found, n := "", false, 0
	for _, raw := range exts {
		ext, _ := raw.(map[string]any)
		if ext["url"] != AccessExtension {
			continue
		}
		found, n = true, n+1
		value, _ = ext["valueString"].(string)
	}
	if n > 1 {
		return "", true
	}
	return value, found
}

// EncodeString is Encode as a string, for the AccessExtension's value.
func (a *Access) EncodeString() (string, error) {
	b, err := a.Encode()
	if err != nil {
		return "", err
	}
	return string(b), nil
}
