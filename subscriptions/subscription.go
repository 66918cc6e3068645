package subscriptions

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unique"

	"github.com/fhirsub/fhirsub/conformance/search"
	"github.com/fhirsub/fhirsub/conformance/smart"
	"github.com/fhirsub/fhirsub/fhirstore"
	"github.com/fhirsub/fhirsub/subscriptions/delivery"
	"github.com/fhirsub/fhirsub/topics"
)

// Status is the status of a Subscription (R4 subscription-status codes).
type Status string

// The four R4 statuses.
const (
	StatusRequested Status = "requested"
	StatusActive    Status = "active"
	StatusError     Status = "error"
	StatusOff       Status = "off"
)

// Content is the payload content level of a topic-based subscription.
type Content string

// The Backport IG payload content codes.
const (
	ContentEmpty        Content = "empty"
	ContentIDOnly       Content = "id-only"
	ContentFullResource Content = "full-resource"
)

// rank orders content levels: empty < id-only < full-resource.
func (c Content) rank() int {
	switch c {
	case ContentIDOnly:
		return 1
	case ContentFullResource:
		return 2
	}
	return 0
}

// Channel types the server supports.
const (
	ChannelRestHook  = "rest-hook"
	ChannelWebsocket = "websocket"
)

// Extension URLs a Subscription may carry. Every other extension is
// rejected.
const (
	igStructure = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"
	// ExtFilterCriteria is backport-filter-criteria (on Subscription.criteria).
	ExtFilterCriteria = igStructure + "backport-filter-criteria"
	// ExtPayloadContent is backport-payload-content (on channel.payload).
	ExtPayloadContent = igStructure + "backport-payload-content"
	// ExtHeartbeatPeriod is backport-heartbeat-period (on channel), seconds.
	ExtHeartbeatPeriod = igStructure + "backport-heartbeat-period"
	// ExtTimeout is backport-timeout (on channel), seconds per attempt.
	ExtTimeout = igStructure + "backport-timeout"
	// ExtMaxCount is backport-max-count (on channel): events per Bundle.
	ExtMaxCount = igStructure + "backport-max-count"
	// ExtChannelType is backport-channel-type (on channel.type); custom
	// channels are not supported, so it is always rejected.
	ExtChannelType = igStructure + "backport-channel-type"
	// ExtHMACSecret is fhirsub's own extension on Subscription.channel: a
	// valueString secret with which rest-hook requests are signed.
	ExtHMACSecret = "https://fhirsub.org/StructureDefinition/subscription-hmac-secret"
	// ProfileSubscription is the Backport Subscription profile.
	ProfileSubscription = igStructure + "backport-subscription"
	// ProfileStatus is the profile of the status Parameters.
	ProfileStatus = igStructure + "backport-subscription-status-r4"
)

// Subscription is a parsed, validated Subscription resource. It is
// immutable once parsed; a change of the resource gives a new value.
type Subscription struct {
	// ID and VersionID name the stored version parsed ("" before storage).
	ID, VersionID string
	// Status is the resource's status.
	Status Status
	// Topic is the topic of a topic-based subscription (nil: classic).
	Topic *topics.Topic
	// Filters are the parsed backport-filter-criteria, AND-ed.
	Filters []*topics.Filter
	// Criteria is the classic criteria (nil: topic-based).
	Criteria *search.Query
	// ChannelType is rest-hook or websocket.
	ChannelType string
	// Endpoint is channel.endpoint.
	Endpoint string
	// Payload is the channel.payload MIME type ("" for a classic
	// subscription without payload).
	Payload string
	// Content is the payload content level (classic: empty without
	// payload, full-resource with one).
	Content Content
	// Headers are the channel.header lines, sent verbatim.
	Headers []string
	// Heartbeat is the heartbeat period (0: none).
	Heartbeat time.Duration
	// Timeout is the per-attempt timeout (0: the manager's default).
	Timeout time.Duration
	// MaxCount is the most events per notification Bundle, from
	// backport-max-count (0: not given, DefaultMaxCount); at most 1000.
	MaxCount int32
	// versioned: the criteria names the topic's version (TopicURL).
	versioned bool
	// end is when the subscription ends, as delivery.InstantOf gives it
	// (0: never; see End).
	end int64
	// Secret is the HMAC secret of ExtHMACSecret ("" for none).
	Secret string
	// Error is Subscription.error.
	Error string
	// Access is the access of the token that created the subscription
	// (ExtAccess; Full for one stored without it): only changes to
	// resources it may see are notified.
	Access *smart.Access

	// endpoint keeps the one shared copy of Endpoint alive (unique)
	endpoint unique.Handle[string]
	// dest is the rest-hook endpoint's host:port (delivery.Destination),
	// worked out once instead of on every delivery; dests keeps its one
	// shared copy alive.
	dest  string
	dests unique.Handle[string]
}

// TopicURL returns Subscription.criteria of a topic-based subscription
// ("" for a classic one): its topic's canonical URL, with the topic's
// version when the criteria names it ("url|version").
func (s *Subscription) TopicURL() string {
	switch {
	case s.Topic == nil:
		return ""
	case s.versioned:
		return s.Topic.Canonical()
	}
	return s.Topic.URL
}

// End returns when the subscription ends (zero: never). An end already
// past when the version was written is ignored (see the package doc).
func (s *Subscription) End() time.Time { return delivery.TimeOf(s.end) }

// ended reports whether the subscription has ended at now (an end
// clamped to 2262 never comes).
func (s *Subscription) ended(now time.Time) bool {
	return s.end != 0 && s.end != math.MaxInt64 && delivery.InstantOf(now) >= s.end
}

// Classic reports whether the subscription uses R4 classic criteria.
func (s *Subscription) Classic() bool { return s.Criteria != nil }

// Reference returns "Subscription/{id}".
func (s *Subscription) Reference() string { return "Subscription/" + s.ID }

// Error is a rejected Subscription or SubscriptionTopic write, or a failed
// operation: it carries the HTTP status, the FHIR issue type and the
// FHIRPath of the element at fault (the web package renders it as an
// OperationOutcome).
type Error struct {
	Status  int
	Code    string
	Element string
	Message string
	Err     error
}

// Error implements error.
func (e *Error) Error() string {
	if e.Element == "" {
		return e.Message
	}
	return e.Element + ": " + e.Message
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// HTTPStatus is the status to answer.
func (e *Error) HTTPStatus() int { return e.Status }

// IssueCode is the OperationOutcome issue type.
func (e *Error) IssueCode() string { return e.Code }

// Expression names the element at fault.
func (e *Error) Expression() []string {
	if e.Element == "" {
		return nil
	}
	return []string{e.Element}
}

func invalid(element, format string, args ...any) *Error {
	return &Error{Status: http.StatusUnprocessableEntity, Code: "invalid", Element: element, Message: fmt.Sprintf(format, args...)}
}

func unsupported(element, format string, args ...any) *Error {
	return &Error{Status: http.StatusUnprocessableEntity, Code: "not-supported", Element: element, Message: fmt.Sprintf(format, args...)}
}

// parser turns a Subscription resource into a *Subscription.
type parser struct {
	topics   *topics.Registry
	endpoint func(string) error
	accesses *accesses // shared decoded accesses (nil: none)
	// client is true for a body submitted by a client (status rules apply).
	client bool
}

// parse validates body. For a stored version, res names it (id, version,
// time); for a client submission res is nil.
func (p *parser) parse(body map[string]any, res *fhirstore.Resource) (*Subscription, error) {
	if rt, _ := body["resourceType"].(string); rt != "Subscription" {
		return nil, invalid("Subscription.resourceType", "must be Subscription")
	}
	if err := checkExtensions(body); err != nil {
		return nil, err
	}
	s := &Subscription{}
	if res != nil {
		s.ID, s.VersionID = res.ID, res.VersionID
	}
	if err := p.access(s, body); err != nil {
		return nil, err
	}
	if err := p.status(s, body); err != nil {
		return nil, err
	}
	s.Error, _ = body["error"].(string)
	if err := p.end(s, body, res); err != nil {
		return nil, err
	}
	channel, _ := body["channel"].(map[string]any)
	if channel == nil {
		return nil, invalid("Subscription.channel", "required")
	}
	if err := p.channel(s, channel); err != nil {
		return nil, err
	}
	criteria, _ := body["criteria"].(string)
	criteria = strings.TrimSpace(criteria)
	switch {
	case criteria == "":
		return nil, invalid("Subscription.criteria", "required: a SubscriptionTopic canonical URL or Type?params")
	case isAbsoluteURL(criteria):
		if err := p.topic(s, criteria, body, channel); err != nil {
			return nil, err
		}
	default:
		if err := p.classic(s, criteria, body, channel); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// access reads ExtAccess. A client submission never carries it (the
// write hook takes it out first); a stored version without it has Full.
func (p *parser) access(s *Subscription, body map[string]any) error {
	if _, found := smart.AccessOf(body); found && p.client {
		return invalid("Subscription.extension", "extension %s is managed by the server: omit it", ExtAccess)
	}
	a, _, err := storedAccess(body, p.accesses)
	if err != nil {
		return err
	}
	s.Access = a
	return nil
}

func (p *parser) status(s *Subscription, body map[string]any) error {
	st, _ := body["status"].(string)
	s.Status = Status(interned(st, string(StatusRequested), string(StatusActive), string(StatusError), string(StatusOff)))
	switch s.Status {
	case StatusRequested, StatusOff:
	case StatusActive:
		if p.client {
			// only the server activates (after the handshake)
			s.Status = StatusRequested
		}
	case StatusError:
		if p.client {
			return invalid("Subscription.status", "a client may submit only requested or off (error is set by the server)")
		}
	case "":
		return invalid("Subscription.status", "required")
	default:
		return invalid("Subscription.status", "%q is not requested, active, error or off", st)
	}
	return nil
}

func (p *parser) end(s *Subscription, body map[string]any, res *fhirstore.Resource) error {
	raw, ok := body["end"].(string)
	if !ok {
		return nil
	}
	end, err := time.Parse(time.RFC3339Nano, raw)
	if err != nil {
		return invalid("Subscription.end", "%q is not an instant (YYYY-MM-DDThh:mm:ss with a time zone)", raw)
	}
	// An end already past when the version was written is ignored: the
	// IG's and Inferno's sample subscriptions carry one (see doc.go).
	written := time.Now()
	if res != nil && !res.LastUpdated.IsZero() {
		written = res.LastUpdated
	}
	if end.After(written) {
		s.end = delivery.InstantOf(end)
	}
	return nil
}

func (p *parser) channel(s *Subscription, ch map[string]any) error {
	s.ChannelType, _ = ch["type"].(string)
	s.ChannelType = interned(s.ChannelType, ChannelRestHook, ChannelWebsocket)
	switch s.ChannelType {
	case ChannelRestHook, ChannelWebsocket:
	case "":
		return invalid("Subscription.channel.type", "required")
	default:
		return unsupported("Subscription.channel.type", "channel type %q is not supported (rest-hook, websocket)", s.ChannelType)
	}
	if e, _ := ch["endpoint"].(string); e != "" {
		// many subscriptions share a receiver: one copy of its URL
		s.endpoint = unique.Make(e)
		s.Endpoint = s.endpoint.Value()
	}
	if s.ChannelType == ChannelRestHook {
		if s.Endpoint == "" {
			return invalid("Subscription.channel.endpoint", "required for a rest-hook channel")
		}
		if err := p.endpoint(s.Endpoint); err != nil {
			return &Error{Status: http.StatusUnprocessableEntity, Code: "invalid", Element: "Subscription.channel.endpoint",
				Message: fmt.Sprintf("endpoint %q is not allowed: %v", s.Endpoint, err), Err: err}
		}
		if d := delivery.Destination(s.Endpoint); d != "" {
			s.dests = unique.Make(d)
			s.dest = s.dests.Value()
		}
	}
	if raw, ok := ch["payload"]; ok {
		mt, _ := raw.(string)
		if err := checkMIME(mt); err != nil {
			return err
		}
		s.Payload = interned(mt, "application/fhir+json", "application/json")
	}
	headers, _ := ch["header"].([]any)
	for i, h := range headers {
		line, _ := h.(string)
		if err := checkHeader(line); err != nil {
			return invalid(fmt.Sprintf("Subscription.channel.header[%d]", i), "%v", err)
		}
		s.Headers = append(s.Headers, line)
	}
	exts, _ := ch["extension"].([]any)
	for i, raw := range exts {
		ext, _ := raw.(map[string]any)
		url, _ := ext["url"].(string)
		path := fmt.Sprintf("Subscription.channel.extension[%d]", i)
		switch url {
		case ExtHeartbeatPeriod:
			n, err := intValue(ext, "valueUnsignedInt", path, 1)
			if err != nil {
				return err
			}
			s.Heartbeat = time.Duration(n) * time.Second
		case ExtTimeout:
			n, err := intValue(ext, "valueUnsignedInt", path, 1)
			if err != nil {
				return err
			}
			s.Timeout = time.Duration(n) * time.Second
		case ExtMaxCount:
			n, err := intValue(ext, "valuePositiveInt", path, 1)
			if err != nil {
				return err
			}
			s.MaxCount = int32(min(n, 1000))
		case ExtHMACSecret:
			v, _ := ext["valueString"].(string)
			if v == "" {
				return invalid(path, "the HMAC secret extension needs a non-empty valueString")
			}
			s.Secret = v
		}
	}
	return nil
}

// intValue reads a positive integer value[x] of an extension.
func intValue(ext map[string]any, key, path string, least int64) (int64, error) {
	var n int64
	var err error
	switch v := ext[key].(type) {
	case interface{ Int64() (int64, error) }:
		n, err = v.Int64()
	case float64:
		n = int64(v)
		if float64(n) != v {
			err = fmt.Errorf("not an integer")
		}
	default:
		return 0, invalid(path, "needs %s", key)
	}
	if err != nil || n < least || n > 1<<31-1 {
		return 0, invalid(path+"."+key, "must be an integer from %d to 2147483647", least)
	}
	return n, nil
}

func (p *parser) topic(s *Subscription, criteria string, body, ch map[string]any) error {
	t, ok := p.topics.Get(criteria)
	if !ok {
		return unsupported("Subscription.criteria", "unknown SubscriptionTopic %q (the CapabilityStatement lists the supported topics)", criteria)
	}
	if p.client && t.Status != "active" && s.Status != StatusOff {
		// the CapabilityStatement lists the active topics only; a
		// subscription already on a topic retired since may still be
		// switched off, and stored ones keep working
		return unsupported("Subscription.criteria", "SubscriptionTopic %q is %s: only an active topic takes subscriptions", criteria, t.Status)
	}
	// Get finds a topic by its URL, or by "url|version": the criteria is
	// one of the two, and TopicURL gives it back.
	s.Topic, s.versioned = t, criteria != t.URL
	if c, _ := body["_criteria"].(map[string]any); c != nil {
		exts, _ := c["extension"].([]any)
		for i, raw := range exts {
			ext, _ := raw.(map[string]any)
			if ext["url"] != ExtFilterCriteria {
				continue
			}
			path := fmt.Sprintf("Subscription.criteria.extension[%d]", i)
			v, _ := ext["valueString"].(string)
			if v == "" {
				return invalid(path, "backport-filter-criteria needs a valueString")
			}
			f, err := t.ParseFilter(v)
			if err != nil {
				return &Error{Status: http.StatusUnprocessableEntity, Code: "not-supported", Element: path, Message: err.Error()}
			}
			s.Filters = append(s.Filters, f)
		}
	}
	if s.Payload == "" {
		return invalid("Subscription.channel.payload", "required for a topic-based subscription (application/fhir+json)")
	}
	content, err := payloadContent(ch)
	if err != nil {
		return err
	}
	if content == "" {
		return invalid("Subscription.channel.payload.extension", "the backport-payload-content extension is required (empty, id-only or full-resource)")
	}
	s.Content = content
	return nil
}

// interned returns the one of known equal to s, else s: a parsed
// subscription lives as long as the server, and a string decoded from
// its body would otherwise be a copy of its own for each of them.
func interned(s string, known ...string) string {
	for _, k := range known {
		if s == k {
			return k
		}
	}
	return s
}

func payloadContent(ch map[string]any) (Content, error) {
	pl, _ := ch["_payload"].(map[string]any)
	exts, _ := pl["extension"].([]any)
	var out Content
	for i, raw := range exts {
		ext, _ := raw.(map[string]any)
		if ext["url"] != ExtPayloadContent {
			continue
		}
		path := fmt.Sprintf("Subscription.channel.payload.extension[%d]", i)
		if out != "" {
			return "", invalid(path, "backport-payload-content may be given once")
		}
		code, _ := ext["valueCode"].(string)
		switch c := Content(code); c {
		case ContentEmpty, ContentIDOnly, ContentFullResource:
			out = Content(interned(code, string(ContentEmpty), string(ContentIDOnly), string(ContentFullResource)))
		default:
			return "", unsupported(path+".valueCode", "payload content %q is not supported (empty, id-only, full-resource)", code)
		}
	}
	return out, nil
}

func (p *parser) classic(s *Subscription, criteria string, body, ch map[string]any) error {
	typ, query, _ := strings.Cut(strings.TrimPrefix(criteria, "/"), "?")
	for _, part := range strings.Split(query, "&") {
		name, _, _ := strings.Cut(part, "=")
		switch name {
		case "_count", "_offset", "_sort", "_format", "_pretty", "_summary", "_elements", "_include", "_revinclude", "_total":
			return unsupported("Subscription.criteria", "parameter %q has no meaning in subscription criteria", name)
		}
	}
	q, err := search.ParseCriteria(criteria)
	if err != nil {
		return &Error{Status: http.StatusUnprocessableEntity, Code: "not-supported", Element: "Subscription.criteria",
			Message: fmt.Sprintf("criteria %q of type %q: %v", criteria, typ, err)}
	}
	if q.Shape().AltersResult() {
		return unsupported("Subscription.criteria", "result parameters (_include, _revinclude, _summary, _elements, _total) have no meaning in subscription criteria")
	}
	s.Criteria = q
	if pc, _ := payloadContent(ch); pc != "" {
		return unsupported("Subscription.channel.payload.extension", "backport-payload-content applies to topic-based subscriptions only")
	}
	s.Content = ContentEmpty
	if s.Payload != "" {
		s.Content = ContentFullResource
	}
	return nil
}

// checkMIME accepts application/fhir+json or application/json, optionally
// with fhirVersion=4.0 and charset=utf-8.
func checkMIME(mt string) error {
	const el = "Subscription.channel.payload"
	base, params, _ := strings.Cut(mt, ";")
	switch strings.ToLower(strings.TrimSpace(base)) {
	case "application/fhir+json", "application/json":
	case "":
		return invalid(el, "empty MIME type")
	default:
		return unsupported(el, "MIME type %q is not supported (application/fhir+json or application/json)", mt)
	}
	for _, param := range strings.Split(params, ";") {
		if strings.TrimSpace(param) == "" {
			continue
		}
		k, v, _ := strings.Cut(param, "=")
		k, v = strings.ToLower(strings.TrimSpace(k)), strings.Trim(strings.TrimSpace(v), `"`)
		switch {
		case k == "fhirversion" && (v == "4.0" || v == "4.0.1"):
		case k == "charset" && strings.EqualFold(v, "utf-8"):
		case k == "fhirversion":
			return unsupported(el, "fhirVersion %q is not supported: this server notifies in FHIR R4 (4.0)", v)
		default:
			return unsupported(el, "MIME parameter %q is not supported", k)
		}
	}
	return nil
}

// checkHeader accepts "Name: value" with a token name and no control
// characters.
func checkHeader(line string) error {
	name, value, ok := strings.Cut(line, ":")
	if !ok {
		return fmt.Errorf("%q is not a \"Name: value\" header", line)
	}
	if name == "" || strings.IndexFunc(name, func(r rune) bool { return !isTokenChar(r) }) >= 0 {
		return fmt.Errorf("header name %q is not a valid HTTP header name", name)
	}
	if strings.ContainsAny(value, "\r\n\x00") {
		return fmt.Errorf("header %q contains a line break", name)
	}
	return nil
}

func isTokenChar(r rune) bool {
	return r < 127 && r > 32 && !strings.ContainsRune(`()<>@,;:\"/[]?={}`, r)
}

// versionNumber parses a version id (0 when it is not a number).
func versionNumber(v string) int64 {
	n, _ := strconv.ParseInt(v, 10, 64)
	return n
}

// isAbsoluteURL tells a topic canonical from classic criteria: a scheme
// ("http:", "https:", "urn:", …) before any '?' or '/'. Classic criteria
// start with a resource type, which has no ':', then '?'. So every URL a
// SubscriptionTopic may have (topics.Parse: "://" or "urn:") can be named.
func isAbsoluteURL(criteria string) bool {
	i := strings.IndexAny(criteria, ":?/")
	return i > 0 && criteria[i] == ':'
}
