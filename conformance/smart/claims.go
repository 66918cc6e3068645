package smart

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// ErrInvalidClaims is wrapped by FromClaims errors.
var ErrInvalidClaims = errors.New("invalid token claims")

var idPattern = regexp.MustCompile(`^[A-Za-z0-9\-.]{1,64}$`)

// FromClaims builds the Access of a verified token's claims:
//
//   - scopes from `scope` (a space-separated string) or `scp` (a string or
//     an array of strings);
//   - the patient in context from `patient` (the SMART launch context),
//     else from `fhirUser` when it names a Patient (".../Patient/123");
//   - the subject from `sub`.
//
// The signature and the time claims must have been checked already.
func FromClaims(claims map[string]any) (*Access, error) {
	a := &Access{Claims: claims}
	a.Subject, _ = claims["sub"].(string)
	raw, err := scopeClaim(claims)
	if err != nil {
		return nil, err
	}
	if a.Scopes, err = ParseScopes(raw); err != nil {
		return nil, err
	}
	switch p := claims["patient"].(type) {
	case nil:
		if u, ok := claims["fhirUser"].(string); ok {
			a.Patient = patientOfFHIRUser(u)
		}
	case string:
		if !idPattern.MatchString(p) {
			return nil, fmt.Errorf("%w: patient %q is not a FHIR id", ErrInvalidClaims, p)
		}
		a.Patient = p
	default:
		return nil, fmt.Errorf("%w: patient must be a string", ErrInvalidClaims)
	}
	return a, nil
}

func scopeClaim(claims map[string]any) (string, error) {
	if v, ok := claims["scope"]; ok {
		s, ok := v.(string)
		if !ok {
			return "", fmt.Errorf("%w: scope must be a space-separated string", ErrInvalidClaims)
		}
		return s, nil
	}
	switch v := claims["scp"].(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	case []any:
		parts := make([]string, 0, len(v))
		for _, x := range v {
			s, ok := x.(string)
			if !ok || strings.ContainsAny(s, " \t\n") {
				return "", fmt.Errorf("%w: scp must hold single scope strings", ErrInvalidClaims)
			}
			parts = append(parts, s)
		}
		return strings.Join(parts, " "), nil
	}
	return "", fmt.Errorf("%w: scp must be a string or an array of strings", ErrInvalidClaims)
}

// patientOfFHIRUser returns the id of a fhirUser naming a Patient
// ("Patient/1" or "https://host/fhir/Patient/1"), else "".
func patientOfFHIRUser(u string) string {
	parts := strings.Split(strings.TrimRight(u, "/"), "/")
	if n := len(parts); n >= 2 && parts[n-2] == "Patient" && idPattern.MatchString(parts[n-1]) {
		return parts[n-1]
	}
	return ""
}
