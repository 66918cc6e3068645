package channels

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
)

// ErrBlockedAddress means a rest-hook endpoint resolved to an address the
// SSRF guard refuses (loopback, private, link-local, unspecified,
// multicast or reserved) and no RestHookConfig.Allow pattern admits it.
var ErrBlockedAddress = errors.New("destination address not allowed")

// ErrInvalidEndpoint means a rest-hook endpoint is not an absolute http or
// https URL without user info and fragment.
var ErrInvalidEndpoint = errors.New("invalid rest-hook endpoint")

// ValidateEndpoint checks a rest-hook endpoint at subscription-create
// time: scheme http or https, a host, a valid port if any, no user info
// and no fragment. It does not resolve the host: the address checks of the
// SSRF guard run when a notification is sent. The error wraps
// ErrInvalidEndpoint.
func ValidateEndpoint(endpoint string) error {
	_, err := parseEndpoint(endpoint)
	return err
}

// ValidateEndpoint is the package-level ValidateEndpoint plus the address
// checks that need no DNS: an endpoint whose host is an address literal
// the guard refuses (127.0.0.1, [::1], 10.0.0.1, 169.254.169.254, …) or
// the name localhost is refused at subscription-create time, unless an
// Allow pattern admits it, instead of being accepted and failing on every
// delivery. Other host names are checked after resolution, when sent. The
// error wraps ErrInvalidEndpoint or ErrBlockedAddress.
func (rh *RestHook) ValidateEndpoint(endpoint string) error {
	u, err := parseEndpoint(endpoint)
	if err != nil {
		return err
	}
	host := u.Hostname()
	port := uint16(80)
	if u.Scheme == "https" {
		port = 443
	}
	if p := u.Port(); p != "" {
		n, _ := strconv.ParseUint(p, 10, 16) // parseEndpoint checked it
		port = uint16(n)
	}
	if rh.allowedName(host, port) {
		return nil
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return rh.check(ip, port)
	}
	if ip, numeric, ok := legacyIPv4(host); numeric {
		// 0x7f000001, 2130706433, 0177.1, 127.1: a resolver that follows
		// inet_aton (glibc, browsers' URL parsers) reads these as IPv4.
		if !ok {
			return fmt.Errorf("%w: host %q ends in a number but is not an IPv4 address", ErrInvalidEndpoint, host)
		}
		return rh.check(ip, port)
	}
	if h := strings.ToLower(strings.TrimSuffix(host, ".")); h == "localhost" || strings.HasSuffix(h, ".localhost") {
		// RFC 6761: localhost names are loopback, whatever DNS says.
		if err := rh.check(netip.AddrFrom4([4]byte{127, 0, 0, 1}), port); err != nil {
			return fmt.Errorf("%w: %s is loopback; %s", ErrBlockedAddress, host, allowHint(net.JoinHostPort(host, strconv.Itoa(int(port)))))
		}
	}
	return nil
}

// legacyIPv4 reads host as inet_aton and the WHATWG URL standard do:
// numeric is true when its last label is a number (decimal, 0-prefixed
// octal or 0x hex), and then ok says whether the whole host is an IPv4
// address of one to four such parts (the last part fills the remaining
// bytes).
func legacyIPv4(host string) (ip netip.Addr, numeric, ok bool) {
	labels := strings.Split(strings.TrimSuffix(host, "."), ".")
	parsePart := func(p string) (uint64, bool) {
		base := 10
		switch {
		case len(p) >= 2 && (p[:2] == "0x" || p[:2] == "0X"):
			p, base = p[2:], 16
			if p == "" {
				return 0, true
			}
		case len(p) > 1 && p[0] == '0':
			p, base = p[1:], 8
		}
		n, err := strconv.ParseUint(p, base, 64)
		return n, err == nil
	}
	if _, numeric = parsePart(labels[len(labels)-1]); !numeric || len(labels) > 4 {
		return netip.Addr{}, numeric, false
	}
	var v uint64
	for i, l := range labels {
		n, good := parsePart(l)
		if !good {
			return netip.Addr{}, true, false
		}
		if i < len(labels)-1 {
			if n > 255 {
				return netip.Addr{}, true, false
			}
			v = v<<8 | n
			continue
		}
		rest := uint(8 * (4 - i))
		if n >= 1<<rest {
			return netip.Addr{}, true, false
		}
		v = v<<rest | n
	}
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), true, true
}

func parseEndpoint(endpoint string) (*url.URL, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidEndpoint, err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("%w: scheme %q (want http or https)", ErrInvalidEndpoint, u.Scheme)
	case u.Opaque != "" || u.Hostname() == "":
		return nil, fmt.Errorf("%w: %q has no host", ErrInvalidEndpoint, endpoint)
	case u.User != nil:
		return nil, fmt.Errorf("%w: user info is not allowed (use a header)", ErrInvalidEndpoint)
	case u.Fragment != "" || strings.Contains(endpoint, "#"):
		return nil, fmt.Errorf("%w: a fragment is not allowed", ErrInvalidEndpoint)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("%w: port %q", ErrInvalidEndpoint, p)
		}
	}
	return u, nil
}

// allowRule is one parsed RestHookConfig.Allow pattern: an address range
// or a host name, with a port (0: any).
type allowRule struct {
	prefix netip.Prefix // valid for address rules
	host   string       // lower-case host name for name rules
	port   uint16
}

// parseAllow parses one Allow pattern: a CIDR ("10.0.0.0/8"), an address
// ("127.0.0.1", "::1"), or either of those or a host name followed by
// ":port" or ":*" ("127.0.0.1:8080", "[::1]:*", "hooks.internal:443"). A
// bare host name ("receiver.internal") allows every port.
func parseAllow(pattern string) (allowRule, error) {
	p := strings.TrimSpace(pattern)
	if p == "" {
		return allowRule{}, errors.New("empty allow pattern")
	}
	if r, ok := parseAllowHost(p); ok {
		return r, nil
	}
	host, port, err := net.SplitHostPort(p)
	if err != nil {
		return allowRule{}, fmt.Errorf("allow pattern %q: want a CIDR, an address, a host name or host:port", pattern)
	}
	r, ok := parseAllowHost(host)
	if !ok {
		return allowRule{}, fmt.Errorf("allow pattern %q: bad host %q", pattern, host)
	}
	if port != "*" {
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil || n == 0 {
			return allowRule{}, fmt.Errorf("allow pattern %q: bad port %q", pattern, port)
		}
		r.port = uint16(n)
	}
	return r, nil
}

// parseAllowHost parses a CIDR, an address or a host name (no port).
func parseAllowHost(s string) (allowRule, bool) {
	if pf, err := netip.ParsePrefix(s); err == nil {
		return allowRule{prefix: pf.Masked()}, true
	}
	if a, err := netip.ParseAddr(s); err == nil {
		a = a.Unmap()
		return allowRule{prefix: netip.PrefixFrom(a, a.BitLen())}, true
	}
	if validHostName(s) {
		return allowRule{host: strings.ToLower(strings.TrimSuffix(s, "."))}, true
	}
	return allowRule{}, false
}

func validHostName(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// allowedName reports whether a name rule admits host:port as written in
// the endpoint URL.
func (rh *RestHook) allowedName(host string, port uint16) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, r := range rh.allow {
		if r.host != "" && r.host == host && (r.port == 0 || r.port == port) {
			return true
		}
	}
	return false
}

// allowedAddr reports whether an address rule admits ip:port.
func (rh *RestHook) allowedAddr(ip netip.Addr, port uint16) bool {
	for _, r := range rh.allow {
		if r.prefix.IsValid() && r.prefix.Contains(ip) && (r.port == 0 || r.port == port) {
			return true
		}
	}
	return false
}

// reservedV4 are IPv4 ranges that are neither public nor covered by the
// netip predicates used in blockedReason.
var reservedV4 = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),   // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("192.0.2.0/24"),    // documentation
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"), // documentation
	netip.MustParsePrefix("203.0.113.0/24"),  // documentation
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, broadcast
}

var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour = netip.MustParsePrefix("2002::/16")
	v4Compat  = netip.MustParsePrefix("::/96")
	siteLocal = netip.MustParsePrefix("fec0::/10")
)

// blockedReason says why the guard refuses ip, or "" for a public address.
// IPv4 addresses embedded in IPv6 (mapped, NAT64, 6to4) are judged as
// IPv4.
func blockedReason(ip netip.Addr) string {
	ip = ip.Unmap()
	if ip.Is6() {
		b := ip.As16()
		switch {
		case nat64.Contains(ip):
			return blockedReason(netip.AddrFrom4([4]byte(b[12:16])))
		case sixToFour.Contains(ip):
			return blockedReason(netip.AddrFrom4([4]byte(b[2:6])))
		case v4Compat.Contains(ip) && !ip.IsLoopback() && !ip.IsUnspecified():
			return "reserved (IPv4-compatible IPv6)"
		case siteLocal.Contains(ip):
			return "private (site-local)"
		}
	}
	switch {
	case !ip.IsValid():
		return "invalid"
	case ip.IsUnspecified():
		return "unspecified"
	case ip.IsLoopback():
		return "loopback"
	case ip.IsPrivate():
		return "private"
	case ip.IsLinkLocalUnicast():
		return "link-local"
	case ip.IsMulticast():
		return "multicast"
	}
	if ip.Is4() {
		for _, p := range reservedV4 {
			if p.Contains(ip) {
				return "reserved"
			}
		}
	}
	return ""
}

// check refuses ip:port unless it is public or allow-listed.
func (rh *RestHook) check(ip netip.Addr, port uint16) error {
	ip = ip.Unmap()
	reason := blockedReason(ip)
	if reason == "" || rh.allowedAddr(ip, port) {
		return nil
	}
	return fmt.Errorf("%w: %s is %s; %s", ErrBlockedAddress, netip.AddrPortFrom(ip, port), reason,
		allowHint(netip.PrefixFrom(ip, ip.BitLen()).String()))
}

// allowHint tells the operator how to admit a refused destination: the
// server's allow-list setting (flag and environment variable of
// `fhirsub serve`) and the pattern to add.
func allowHint(pattern string) string {
	return fmt.Sprintf("to allow it, add %s to --resthook-allow (env FHIRSUB_RESTHOOK_ALLOW) on the server", pattern)
}

// dialContext is the transport's dialer. An allow-listed host name is
// dialled as is; an address literal is checked before dialling; otherwise
// every address the name resolves to is checked in the dialer's Control
// hook, that is after DNS resolution and on the very address connected to,
// so DNS rebinding cannot slip past the check.
func (rh *RestHook) dialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidEndpoint, err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("%w: port %q", ErrInvalidEndpoint, portStr)
	}
	if rh.allowedName(host, uint16(port)) {
		return rh.dialer.DialContext(ctx, network, addr)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if err := rh.check(ip, uint16(port)); err != nil {
			return nil, err
		}
	}
	d := rh.dialer // a copy with the guard installed
	d.Control = rh.control
	return d.DialContext(ctx, network, addr)
}

// control is the net.Dialer Control hook: address is the resolved ip:port.
func (rh *RestHook) control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: cannot parse dialled address %q", ErrBlockedAddress, address)
	}
	if err := rh.check(ap.Addr(), ap.Port()); err != nil {
		rh.log.Debug("rest-hook destination refused", "network", network, "address", address, "error", err)
		return err
	}
	return nil
}
