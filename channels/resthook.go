package channels

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// Rest-hook signature headers, set when Request.Secret is not empty.
const (
	// SignatureHeader carries "sha256=" followed by the lower-case hex
	// HMAC-SHA256, keyed with Request.Secret, of the bytes
	// TimestampHeader value + "." + request body (the body may be empty).
	SignatureHeader = "X-Fhirsub-Signature"
	// TimestampHeader carries the signing time as decimal Unix seconds.
	// Receivers should reject timestamps too far from their clock, which
	// stops replays of a captured request.
	TimestampHeader = "X-Fhirsub-Timestamp"
)

// ErrInvalidHeader means a Request header line is malformed or would
// inject a header (CR or LF in the line).
var ErrInvalidHeader = errors.New("invalid rest-hook header")

// ErrHTTPStatus means the receiver answered with a status other than 2xx.
var ErrHTTPStatus = errors.New("unsuccessful HTTP status")

// RestHookConfig configures NewRestHook. The zero value of each field
// means its default.
type RestHookConfig struct {
	// Allow lists destinations admitted despite the SSRF guard (what
	// FHIRSUB_RESTHOOK_ALLOW holds): CIDRs ("10.1.0.0/16"), addresses
	// ("127.0.0.1", "::1"), and either or a host name with a port or ":*"
	// ("127.0.0.1:8080", "[::1]:*", "hooks.internal:443"); a bare host
	// name admits every port. A host-name pattern trusts whatever that
	// name resolves to.
	Allow []string
	// MaxResponseBytes caps how much of a response body is read (default
	// 64 KiB); the rest is not read and the connection is not reused.
	MaxResponseBytes int64
	// DefaultTimeout is the whole-request timeout when Request.Timeout is
	// zero (default 10 s).
	DefaultTimeout time.Duration
	// MaxTimeout caps Request.Timeout (default 2 min).
	MaxTimeout time.Duration
	// MaxConnsPerHost bounds the connections open to one receiver
	// (default 64); a request beyond it waits for one to be free.
	MaxConnsPerHost int
	// UserAgent is sent with every request (default "fhirsub-rest-hook").
	UserAgent string
	// Now gives the signing time and the base of Retry-After dates
	// (default time.Now).
	Now func() time.Time
	// Logger receives debug messages about refused destinations; nil
	// discards them.
	Logger *slog.Logger
}

// RestHook sends rest-hook notifications over HTTP(S) with an SSRF guard,
// timeouts, a response size limit and optional HMAC signatures.
//
// Guard: the host of an endpoint is resolved, and each address the dialer
// is about to connect to is refused (ErrBlockedAddress, permanent) when it
// is loopback, private (RFC 1918, fc00::/7, fec0::/10), link-local
// (169.254.0.0/16 including the cloud metadata address 169.254.169.254,
// fe80::/10), unspecified, multicast or reserved (0/8, 100.64/10, test and
// documentation nets, 240/4), IPv4 embedded in IPv6 being judged as IPv4 —
// unless an Allow pattern admits it. No proxy from the environment is used
// (it would bypass the guard). Redirects are never followed: a 3xx answer
// is a permanent failure naming the Location, since following it would
// send the notification (and its signature and headers) somewhere the
// subscriber did not register.
//
// Outcome: 2xx is success. Permanent failures (do not retry this
// request): refused destination, invalid URL, method or header, 3xx, and
// 4xx other than 408 and 429. Temporary failures: network errors,
// timeouts, 5xx, 408 and 429; a Retry-After header (seconds or HTTP date)
// on 408, 429 or 5xx sets DeliveryError.RetryAfter.
//
// Requests are HTTP/1.1 (fasthttp: a request costs about half the CPU of
// net/http's client, which matters at thousands of deliveries a second),
// on kept-alive connections; a request that finds its reused connection
// closed by the receiver is sent again on the next one (hookTransport).
// Response headers are limited to 64 KiB.
//
// A RestHook is safe for concurrent use. Close releases its idle
// connections; the connection pool's cleaners (fasthttp's) end by
// themselves once no connection is left.
type RestHook struct {
	cfg    RestHookConfig
	log    *slog.Logger
	allow  []allowRule
	dialer net.Dialer
	client *fasthttp.Client
	calls  sync.Map // *fasthttp.Request → *call, for hookTransport
}

// NewRestHook returns a RestHook; a malformed Allow pattern is an error.
func NewRestHook(cfg RestHookConfig) (*RestHook, error) {
	if cfg.MaxResponseBytes <= 0 {
		cfg.MaxResponseBytes = 64 << 10
	}
	if cfg.DefaultTimeout <= 0 {
		cfg.DefaultTimeout = 10 * time.Second
	}
	if cfg.MaxTimeout <= 0 {
		cfg.MaxTimeout = 2 * time.Minute
	}
	cfg.DefaultTimeout = min(cfg.DefaultTimeout, cfg.MaxTimeout)
	if cfg.MaxConnsPerHost <= 0 {
		cfg.MaxConnsPerHost = 64
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "fhirsub-rest-hook"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	rh := &RestHook{cfg: cfg, log: cfg.Logger.With("channel", "rest-hook")}
	for _, p := range cfg.Allow {
		r, err := parseAllow(p)
		if err != nil {
			return nil, fmt.Errorf("rest-hook config: %w", err)
		}
		rh.allow = append(rh.allow, r)
	}
	rh.dialer = net.Dialer{Timeout: min(10*time.Second, cfg.MaxTimeout), KeepAlive: 30 * time.Second}
	rh.client = &fasthttp.Client{
		DialTimeout: func(addr string, timeout time.Duration) (net.Conn, error) {
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			return rh.dialContext(ctx, "tcp", addr)
		},
		Transport:                hookTransport{rh},
		TLSConfig:                &tls.Config{MinVersion: tls.VersionTLS12},
		NoDefaultUserAgentHeader: true,
		DisablePathNormalizing:   true, // the endpoint's path is sent as registered
		MaxConnsPerHost:          cfg.MaxConnsPerHost,
		MaxConnWaitTimeout:       cfg.MaxTimeout,
		MaxIdleConnDuration:      90 * time.Second,
		ReadBufferSize:           64 << 10, // the limit of a response's headers
		MaxResponseBodySize:      int(cfg.MaxResponseBytes),
		// hookTransport does the retrying there is (stale connections);
		// the client is never to send a request again by itself
		MaxIdemponentCallAttempts: 1,
	}
	return rh, nil
}

// Close closes the idle keep-alive connections. The RestHook stays usable.
func (rh *RestHook) Close() error {
	rh.client.CloseIdleConnections()
	return nil
}

// Request is one rest-hook HTTP request.
type Request struct {
	// Method is "POST" (the default when empty) or "PUT".
	Method string
	// URL is the absolute http or https URL (see ValidateEndpoint).
	URL string
	// Headers are Subscription.channel.header lines, "Name: value", each
	// split at the first ':' and trimmed, then sent as given. A line with
	// CR or LF, an empty or non-token name or no ':' is refused.
	Headers []string
	// ContentType is the Content-Type header; empty sends none (as for
	// the classic empty POST). It overrides a Content-Type header line.
	ContentType string
	// Body is the request body; empty sends Content-Length: 0.
	Body []byte
	// Timeout bounds the whole request (0: RestHookConfig.DefaultTimeout;
	// capped at MaxTimeout).
	Timeout time.Duration
	// Secret, when not empty, is the HMAC-SHA256 key of the signature
	// headers (see SignatureHeader).
	Secret []byte
}

// Response is the outcome of a successful Send.
type Response struct {
	// Status is the receiver's 2xx status code.
	Status int
}

// DeliveryError is the error of a failed Send; read it with errors.As.
type DeliveryError struct {
	// Permanent means retrying the same request cannot succeed.
	Permanent bool
	// RetryAfter is the receiver's Retry-After delay (0 when none).
	RetryAfter time.Duration
	// Status is the HTTP status received, 0 when none was.
	Status int
	// Err is the cause: ErrBlockedAddress, ErrInvalidEndpoint,
	// ErrInvalidHeader, ErrHTTPStatus or a network error.
	Err error
}

// RetryHint reports whether a retry can succeed (permanent: it cannot)
// and the receiver's Retry-After delay: the form in which the subscription
// pipeline, which does not import this package, reads a failure.
func (e *DeliveryError) RetryHint() (permanent bool, after time.Duration) {
	return e.Permanent, e.RetryAfter
}

// PublicReason describes the failure in words the subscriber may read
// (Subscription.error): the HTTP status and a fixed reason. What the
// endpoint answered and what the network said (resolved addresses, TLS
// and dial errors) stay out of it, so that a subscription cannot be used
// to read an internal page or map an internal network.
func (e *DeliveryError) PublicReason() string {
	switch {
	case e.Status >= 300 && e.Status < 400:
		return fmt.Sprintf("the endpoint answered HTTP %d %s (redirects are not followed)", e.Status, http.StatusText(e.Status))
	case e.Status != 0:
		return fmt.Sprintf("the endpoint answered HTTP %d %s", e.Status, http.StatusText(e.Status))
	case errors.Is(e, ErrBlockedAddress):
		return "the endpoint's address is not allowed (loopback, private or link-local)"
	case errors.Is(e, ErrInvalidEndpoint), errors.Is(e, ErrInvalidHeader):
		return "the endpoint or a channel header is not valid"
	}
	return "the endpoint could not be reached or did not answer in time"
}

// Error describes the failure and whether it is permanent.
func (e *DeliveryError) Error() string {
	kind := "temporary"
	if e.Permanent {
		kind = "permanent"
	}
	s := "rest-hook delivery failed (" + kind + "): " + e.Err.Error()
	if e.RetryAfter > 0 {
		s += fmt.Sprintf(" (retry after %s)", e.RetryAfter)
	}
	return s
}

// Unwrap returns the cause.
func (e *DeliveryError) Unwrap() error { return e.Err }

func permanent(err error) *DeliveryError { return &DeliveryError{Permanent: true, Err: err} }

// Send performs one rest-hook request. A nil error means a 2xx answer;
// any other outcome is a *DeliveryError saying whether to retry. When ctx
// ends, the request is abandoned and its connection closed.
func (rh *RestHook) Send(ctx context.Context, r Request) (Response, error) {
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = rh.cfg.DefaultTimeout
	}
	c := &call{ctx: ctx, deadline: time.Now().Add(min(timeout, rh.cfg.MaxTimeout))}
	if d, ok := ctx.Deadline(); ok && d.Before(c.deadline) {
		c.deadline = d
	}
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	u, err := rh.buildRequest(req, r)
	if err != nil {
		return Response{}, permanent(err)
	}
	if err := ctx.Err(); err != nil {
		return Response{}, &DeliveryError{Err: err}
	}
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	rh.calls.Store(req, c)
	err = rh.client.DoDeadline(req, resp, c.deadline)
	rh.calls.Delete(req)
	if err != nil {
		return Response{}, rh.failure(c, err)
	}
	st := resp.StatusCode()
	if st >= 200 && st < 300 {
		return Response{Status: st}, nil
	}
	de := &DeliveryError{Status: st}
	var detail string
	switch {
	case st >= 300 && st < 400:
		de.Permanent = true
		detail = " (redirect not followed)"
	case st == http.StatusRequestTimeout, st == http.StatusTooManyRequests, st >= 500:
		de.RetryAfter = retryAfter(string(resp.Header.Peek("Retry-After")), rh.cfg.Now())
	default:
		de.Permanent = true
	}
	// The error text ends up in Subscription.error and $status, which
	// readers of the subscription see: it carries the status code and a
	// fixed reason only, never the endpoint's body, reason phrase or
	// Location (an allow-listed internal page must not become readable).
	// The body's start goes to the log only.
	if s := snippet(resp.Body()); s != "" {
		rh.log.Debug("rest-hook endpoint answered an error", "endpoint", u.Redacted(), "status", st, "body", s)
	}
	de.Err = fmt.Errorf("%w: %d %s%s", ErrHTTPStatus, st, http.StatusText(st), detail)
	return Response{}, de
}

// failure is the DeliveryError of a request that got no answer.
func (rh *RestHook) failure(c *call, err error) *DeliveryError {
	switch {
	case errors.Is(err, ErrBlockedAddress), errors.Is(err, ErrInvalidEndpoint):
		return permanent(err)
	case c.ctx.Err() != nil:
		return &DeliveryError{Err: c.ctx.Err()}
	case isTimeout(err):
		return &DeliveryError{Err: fmt.Errorf("%w: %w", context.DeadlineExceeded, err)}
	}
	return &DeliveryError{Err: err}
}

// buildRequest fills req from r, refusing what it must not send, and
// returns the endpoint parsed.
func (rh *RestHook) buildRequest(req *fasthttp.Request, r Request) (*url.URL, error) {
	method := r.Method
	switch method {
	case "":
		method = http.MethodPost
	case http.MethodPost, http.MethodPut:
	default:
		return nil, fmt.Errorf("rest-hook method %q: want POST or PUT", r.Method)
	}
	u, err := parseEndpoint(r.URL)
	if err != nil {
		return nil, err
	}
	req.SetRequestURI(u.String())
	req.Header.SetNoDefaultContentType(true) // none unless r says one
	req.Header.SetMethod(method)
	req.Header.SetUserAgent(rh.cfg.UserAgent)
	for _, line := range r.Headers {
		name, value, err := splitHeader(line)
		if err != nil {
			return nil, err
		}
		if framing(name) {
			continue // the client's own: the URL's host, the body's length, our User-Agent
		}
		req.Header.Add(name, value)
	}
	if strings.ContainsAny(r.ContentType, "\r\n\x00") {
		return nil, fmt.Errorf("%w: content type contains a control character", ErrInvalidHeader)
	}
	if r.ContentType != "" {
		req.Header.SetContentType(r.ContentType)
	}
	if len(r.Secret) > 0 {
		ts := strconv.FormatInt(rh.cfg.Now().Unix(), 10)
		req.Header.Set(TimestampHeader, ts)
		req.Header.Set(SignatureHeader, Sign(r.Secret, ts, r.Body))
	}
	req.SetBodyRaw(r.Body)
	return u, nil
}

// framing reports whether a channel header line names a header the client
// sets itself, which a line must not override (as net/http's client,
// which sent them before, ignored them).
func framing(name string) bool {
	for _, h := range [...]string{"Host", "Content-Length", "Transfer-Encoding", "Trailer", "User-Agent"} {
		if strings.EqualFold(name, h) {
			return true
		}
	}
	return false
}

// Sign returns the SignatureHeader value for a body signed at timestamp
// (the TimestampHeader value): "sha256=" + hex(HMAC-SHA256(secret,
// timestamp + "." + body)). Receivers recompute it and compare with
// hmac.Equal.
func Sign(secret []byte, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// splitHeader splits "Name: value" at the first ':' and trims both parts.
func splitHeader(line string) (name, value string, err error) {
	if strings.ContainsAny(line, "\r\n") {
		return "", "", fmt.Errorf("%w: %q contains CR or LF", ErrInvalidHeader, line)
	}
	name, value, ok := strings.Cut(line, ":")
	if !ok {
		return "", "", fmt.Errorf("%w: %q has no ':'", ErrInvalidHeader, line)
	}
	name, value = strings.TrimSpace(name), strings.TrimSpace(value)
	if !validToken(name) {
		return "", "", fmt.Errorf("%w: %q is not a header name", ErrInvalidHeader, name)
	}
	for i := 0; i < len(value); i++ {
		if c := value[i]; c < ' ' && c != '\t' || c == 0x7f {
			return "", "", fmt.Errorf("%w: value of %s contains a control character", ErrInvalidHeader, name)
		}
	}
	return name, value, nil
}

// validToken reports whether s is an RFC 9110 token (a header name).
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// snippetBytes is how much of an unsuccessful answer's body is logged.
const snippetBytes = 200

// snippet returns the printable start of a response body.
func snippet(body []byte) string {
	n := min(len(body), snippetBytes)
	s := strings.ToValidUTF8(string(body[:n]), "")
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if n == snippetBytes {
		s += "…"
	}
	return strings.TrimSpace(s)
}

// retryAfter parses a Retry-After value: delay seconds or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		return time.Duration(min(secs, int64(7*24*time.Hour/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
