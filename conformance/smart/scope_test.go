package smart_test

import (
	"errors"
	"testing"

	"github.com/fhirsub/fhirsub/conformance/smart"
)

func TestParseScopes(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string // "context type perms query" per resource scope
	}{
		{"v1 read", "patient/Observation.read", []string{"patient Observation rs "}},
		{"v1 write", "user/Patient.write", []string{"user Patient cud "}},
		{"v1 star", "system/*.*", []string{"system * cruds "}},
		{"v1 star type", "patient/*.read", []string{"patient * rs "}},
		{"v2 rs", "user/*.rs", []string{"user * rs "}},
		{"v2 cruds", "system/*.cruds", []string{"system * cruds "}},
		{"v2 single", "patient/Observation.s", []string{"patient Observation s "}},
		{"v2 cd", "user/Encounter.cd", []string{"user Encounter cd "}},
		{"v2 granular", "patient/Observation.rs?category=laboratory", []string{"patient Observation rs category=laboratory"}},
		{"extra type", "user/SubscriptionTopic.r", []string{"user SubscriptionTopic r "}},
		{"non-resource scopes skipped", "openid fhirUser launch launch/patient offline_access online_access profile email",
			nil},
		{"mixed", "openid patient/Observation.rs  user/Patient.read\tlaunch", []string{"patient Observation rs ", "user Patient rs "}},
		{"empty", "", nil},
		{"other prefix skipped", "launch/encounter api/read", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := smart.ParseScopes(tc.in)
			if err != nil {
				t.Fatalf("ParseScopes(%q): %v", tc.in, err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d scopes %v, want %d", len(got), got, len(tc.want))
			}
			for i, s := range got {
				d := s.Context + " " + s.Type + " " + s.Perms.String() + " " + s.Query
				if d != tc.want[i] {
					t.Errorf("scope %d = %q, want %q", i, d, tc.want[i])
				}
			}
		})
	}
}

func TestParseScopesInvalid(t *testing.T) {
	for _, in := range []string{
		"patient/Observation",            // no permissions
		"patient/Observation.",           // empty permissions
		"patient/Observation.sr",         // v2 letters out of order
		"patient/Observation.rr",         // repeated letter
		"patient/Observation.x",          // unknown letter
		"patient/Observation.reads",      // typo of v1
		"patient/Observation.READ",       // case matters
		"patient/Observatio.read",        // unknown type
		"patient/observation.read",       // type case
		"user/.rs",                       // no type
		"system/*.read?code=1",           // v1 with filter
		"patient/*.rs?code=1",            // * with filter
		"patient/Observation.rs?",        // empty filter
		"patient/Observation.rs?bogus=1", // unknown search parameter
		"patient/Observation.rs?_count=5",
		"patient/Observation.rs?code=%zz",
		"patient/Observation.rs?code=\xe6",
		"patient/Observation.rs?code=\"x\"",
		"openid patient/Observation.rs user/Bad.rs", // one bad scope spoils the set
	} {
		t.Run(in, func(t *testing.T) {
			ss, err := smart.ParseScopes(in)
			if err == nil {
				t.Fatalf("ParseScopes(%q) = %v, want an error", in, ss)
			}
			if !errors.Is(err, smart.ErrInvalidScope) {
				t.Errorf("error %v does not wrap ErrInvalidScope", err)
			}
		})
	}
}

func TestScopesString(t *testing.T) {
	in := "openid patient/Observation.rs user/*.read system/Patient.cud?_id=a"
	ss, err := smart.ParseScopes(in)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ss.String(), "patient/Observation.rs user/*.read system/Patient.cud?_id=a"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	again, err := smart.ParseScopes(ss.String())
	if err != nil || again.String() != ss.String() {
		t.Errorf("round trip: %v, %v", again, err)
	}
}

func TestParseScopesLimit(t *testing.T) {
	long := ""
	for range 300 {
		long += "user/*.rs "
	}
	if _, err := smart.ParseScopes(long); !errors.Is(err, smart.ErrInvalidScope) {
		t.Errorf("300 scopes: err %v, want ErrInvalidScope", err)
	}
}
