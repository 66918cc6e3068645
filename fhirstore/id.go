package fhirstore

import "github.com/google/uuid"

// MaxIDLength is the longest logical id FHIR R4 allows.
const MaxIDLength = 64

// NewID returns a new server-assigned logical id: a time-ordered (version
// 7) UUID in its canonical lower-case form, which satisfies ValidID. Ids
// that grow with time make a store's inserts append to the right edge of
// its id-keyed indexes: the creates of one group commit then dirty the
// same few pages instead of one random page each (fhirstore/sqlite: about
// half the WAL frames per create at 8 concurrent writers). The id carries
// the millisecond it was made, which meta.lastUpdated of version 1 already
// tells; the remaining 74 bits are random.
func NewID() string { return uuid.Must(uuid.NewV7()).String() }

// ValidID reports whether id is a valid FHIR logical id:
// 1 to 64 characters from [A-Za-z0-9-.].
func ValidID(id string) bool {
	if len(id) == 0 || len(id) > MaxIDLength {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '.':
		default:
			return false
		}
	}
	return true
}

// ValidType reports whether typ looks like a FHIR resource type name: an
// upper-case ASCII letter followed by up to 63 ASCII letters. It does not
// check the name against the list of R4 types; the web layer does that.
func ValidType(typ string) bool {
	if len(typ) == 0 || len(typ) > 64 || typ[0] < 'A' || typ[0] > 'Z' {
		return false
	}
	for i := 1; i < len(typ); i++ {
		c := typ[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}
