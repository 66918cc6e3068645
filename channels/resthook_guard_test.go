package channels

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestBlockedReason(t *testing.T) {
	for _, tc := range []struct {
		addr string
		want string // "" = public
	}{
		{"8.8.8.8", ""},
		{"93.184.216.34", ""},
		{"2606:4700:4700::1111", ""},
		{"127.0.0.1", "loopback"},
		{"127.255.0.9", "loopback"},
		{"::1", "loopback"},
		{"::ffff:127.0.0.1", "loopback"},
		{"10.0.0.1", "private"},
		{"172.16.5.4", "private"},
		{"192.168.0.1", "private"},
		{"fd12:3456::1", "private"},
		{"fec0::1", "private (site-local)"},
		{"169.254.169.254", "link-local"},
		{"fe80::1", "link-local"},
		{"0.0.0.0", "unspecified"},
		{"::", "unspecified"},
		{"224.0.0.1", "multicast"},
		{"ff02::1", "multicast"},
		{"100.64.0.1", "reserved"},
		{"0.1.2.3", "reserved"},
		{"255.255.255.255", "reserved"},
		{"198.18.0.1", "reserved"},
		{"64:ff9b::a9fe:a9fe", "link-local"}, // NAT64 of 169.254.169.254
		{"64:ff9b::808:808", ""},             // NAT64 of 8.8.8.8
		{"2002:7f00:1::", "loopback"},        // 6to4 of 127.0.0.1
		{"::a00:1", "reserved (IPv4-compatible IPv6)"},
	} {
		if got := blockedReason(netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("blockedReason(%s) = %q, want %q", tc.addr, got, tc.want)
		}
	}
}

func TestAllowRules(t *testing.T) {
	rh, err := NewRestHook(RestHookConfig{Allow: []string{"10.1.0.0/16", "127.0.0.1:8080", "[::1]:*", "Hooks.Internal.:443"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		addr string
		port uint16
		ok   bool
	}{
		{"10.1.2.3", 1, true},
		{"10.2.0.1", 80, false},
		{"127.0.0.1", 8080, true},
		{"127.0.0.1", 8081, false},
		{"::1", 9, true},
		{"::ffff:10.1.0.1", 80, true},
		{"169.254.169.254", 80, false},
		{"8.8.8.8", 443, true}, // public
	} {
		err := rh.check(netip.MustParseAddr(tc.addr), tc.port)
		if (err == nil) != tc.ok {
			t.Errorf("check(%s:%d) = %v, want ok=%v", tc.addr, tc.port, err, tc.ok)
		}
	}
	if !rh.allowedName("hooks.internal", 443) || !rh.allowedName("HOOKS.internal.", 443) || rh.allowedName("hooks.internal", 80) {
		t.Error("name rule hooks.internal:443 misapplied")
	}
}

// TestRefusalNamesTheSetting: the operator reading a refusal learns which
// setting admits the destination, and the pattern to put there.
func TestRefusalNamesTheSetting(t *testing.T) {
	rh, err := NewRestHook(RestHookConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for endpoint, pattern := range map[string]string{
		"http://127.0.0.1:9/hook":  "127.0.0.1/32",
		"http://[::1]:9/hook":      "::1/128",
		"http://localhost:9/hook":  "localhost:9",
		"https://10.0.0.1/hook":    "10.0.0.1/32",
		"http://169.254.169.254/x": "169.254.169.254/32",
	} {
		err := rh.ValidateEndpoint(endpoint)
		t.Logf("%s: %v", endpoint, err)
		if !errors.Is(err, ErrBlockedAddress) {
			t.Fatalf("%s: %v, want ErrBlockedAddress", endpoint, err)
		}
		for _, want := range []string{"--resthook-allow", "FHIRSUB_RESTHOOK_ALLOW", "add " + pattern + " "} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: refusal %q does not say %q", endpoint, err, want)
			}
		}
	}
}

// TestNumericHostsAreAddresses: hosts that inet_aton (and so glibc's
// resolver) reads as IPv4 are judged as the address they name at
// validation, and a host ending in a number that is no address is invalid.
func TestNumericHostsAreAddresses(t *testing.T) {
	rh, err := NewRestHook(RestHookConfig{Allow: []string{"127.0.0.1:8443"}})
	if err != nil {
		t.Fatal(err)
	}
	for endpoint, want := range map[string]error{
		"http://0x7f000001:9/h":        ErrBlockedAddress,
		"http://2130706433:9/h":        ErrBlockedAddress,
		"http://017700000001:9/h":      ErrBlockedAddress,
		"http://0177.0.0.1:9/h":        ErrBlockedAddress,
		"http://127.1:9/h":             ErrBlockedAddress,
		"http://0:9/h":                 ErrBlockedAddress,
		"http://0xa9.254.169.254/h":    ErrBlockedAddress,
		"http://10.1:9/h":              ErrBlockedAddress,
		"http://0x7f.1:9/h":            ErrBlockedAddress,
		"http://127.0.0.0x1./h":        ErrBlockedAddress,
		"http://1.2.3.4.5/h":           ErrInvalidEndpoint,
		"http://example.256/h":         ErrInvalidEndpoint,
		"http://4294967296/h":          ErrInvalidEndpoint,
		"http://0x7f000001:8443/h":     nil, // the allow-listed address, written in hex
		"http://134744072/h":           nil, // 8.8.8.8
		"http://hooks.example.org/h":   nil,
		"http://0xample.example.com/h": nil,
	} {
		err := rh.ValidateEndpoint(endpoint)
		t.Logf("%s: %v", endpoint, err)
		if want == nil && err != nil || want != nil && !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", endpoint, err, want)
		}
	}
}
