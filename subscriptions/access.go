package subscriptions

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"

	"github.com/fhirsub/fhirsub/conformance/smart"
	"github.com/fhirsub/fhirsub/fhirstore"
)

// ExtAccess is fhirsub's server-managed extension on the root of a
// Subscription (smart.AccessExtension): the encoded access of the token
// that created it. Clients may not set or change it: a submission carrying
// it is refused, except an update that sends back the stored value
// unchanged (a read-modify-write). Notifications are limited to what this
// access may see.
const ExtAccess = smart.AccessExtension

// readPerms makes a resource visible.
const readPerms = smart.Read | smart.Search

// callerAccess returns the access of the caller in ctx (smart.FromContext).
// A context without one is in-process work no client asked for: Full.
func callerAccess(ctx context.Context) *smart.Access {
	if a, ok := smart.FromContext(ctx); ok {
		return a
	}
	return smart.Full()
}

func forbidden(format string, args ...any) *Error {
	return &Error{Status: http.StatusForbidden, Code: "forbidden", Message: fmt.Sprintf(format, args...)}
}

// describeOwner names an owner's access in a message without its scopes.
func describeOwner(a *smart.Access) string {
	if a.Patient != "" {
		return "a token for another patient or with wider scopes"
	}
	return "a token with wider access"
}

// storedAccess returns the access a stored Subscription body carries, and
// its raw extension value ("" when the body has none: Full, the access of
// subscriptions stored before the extension existed).
func storedAccess(body map[string]any, shared *accesses) (*smart.Access, string, error) {
	raw, found := smart.AccessOf(body)
	if !found {
		return fullAccess, "", nil
	}
	if raw == "" {
		return nil, "", invalid("Subscription.extension", "the %s extension needs exactly one valueString", ExtAccess)
	}
	if a, ok := shared.get(raw); ok {
		return a, raw, nil
	}
	a, err := smart.Decode([]byte(raw))
	if err != nil {
		return nil, "", invalid("Subscription.extension", "the %s extension is not a readable access: %v", ExtAccess, err)
	}
	shared.put(raw, a)
	return a, raw, nil
}

// fullAccess is the Access of every Subscription stored without ExtAccess
// (created without authentication): one value for all of them, as a
// decoded Access is never changed (~100 bytes a subscription when each
// had its own).
var fullAccess = smart.Full()

// accessesMax bounds the distinct stored accesses shared.
const accessesMax = 4096

// accesses shares one decoded Access among the subscriptions that carry
// the same stored value (those of one owner do), instead of one each: a
// decoded Access is never changed. Past accessesMax distinct values, new
// ones are decoded for themselves. A nil *accesses shares nothing.
type accesses struct {
	mu sync.Mutex
	m  map[string]*smart.Access
}

func newAccesses() *accesses { return &accesses{m: map[string]*smart.Access{}} }

func (c *accesses) get(raw string) (*smart.Access, bool) {
	if c == nil {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	a, ok := c.m[raw]
	return a, ok
}

func (c *accesses) put(raw string, a *smart.Access) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) < accessesMax {
		c.m[raw] = a
	}
}

// ownership checks that the caller may change or delete the stored
// version cur: its access must cover the access the subscription carries.
// It returns the stored access and its raw value.
func ownership(caller *smart.Access, cur *fhirstore.Resource) (*smart.Access, string, error) {
	body, err := fhirstore.Decode(cur.Body)
	if err != nil {
		return nil, "", fmt.Errorf("decode Subscription/%s: %w", cur.ID, err)
	}
	owner, raw, err := storedAccess(body, nil)
	if err != nil {
		return nil, "", fmt.Errorf("stored Subscription/%s: %w", cur.ID, err)
	}
	if !caller.Covers(owner) {
		return nil, "", forbidden("Subscription/%s was created by %s: this token may not change or delete it", cur.ID, describeOwner(owner))
	}
	return owner, raw, nil
}

// takeClientAccess removes every ExtAccess from a submitted body. A value
// is accepted only when it equals stored (the client sent the stored
// version back); any other is refused.
func takeClientAccess(body map[string]any, stored string) error {
	raw, found := smart.AccessOf(body)
	if !found {
		return nil
	}
	if stored == "" || raw != stored {
		return &Error{Status: http.StatusUnprocessableEntity, Code: "invalid", Element: "Subscription.extension",
			Message: fmt.Sprintf("extension %s is managed by the server (the access of the subscription's creator): omit it", ExtAccess)}
	}
	exts, _ := body["extension"].([]any)
	kept := exts[:0:0]
	for _, e := range exts {
		if m, _ := e.(map[string]any); m != nil && m["url"] == ExtAccess {
			continue
		}
		kept = append(kept, e)
	}
	if len(kept) == 0 {
		delete(body, "extension")
	} else {
		body["extension"] = kept
	}
	return nil
}

// stampAccess appends the ExtAccess with value raw to body.
func stampAccess(body map[string]any, raw string) {
	exts, _ := body["extension"].([]any)
	body["extension"] = append(exts, map[string]any{"url": ExtAccess, "valueString": raw})
}

// ReadsEvents is the one decision of who may read a subscription's
// events and status ($events, $status) and so bind it to a websocket (R4
// bind, $get-ws-binding-token): acc may read Subscriptions and covers the
// access the subscription was created with (smart.Access.Covers: the same
// patient or none, every reading scope of the creator), so that it sees at
// least everything the subscription's notifications may carry.
func ReadsEvents(acc *smart.Access, s *Subscription) bool {
	return acc.Allows("Subscription", smart.Read) && acc.Covers(s.Access)
}

// CheckAccess decides whether the caller in ctx (smart.FromContext; none
// counts as Full) may read the subscription's events and status
// (ReadsEvents): it returns a 404 *Error when the subscription is unknown
// and a 403 *Error when the caller's access does not cover the access the
// subscription was created with (another patient, narrower scopes).
func (m *Manager) CheckAccess(ctx context.Context, id string) (*Subscription, error) {
	s, ok := m.lookup(ctx, id)
	if !ok {
		return nil, notFound(id)
	}
	if !ReadsEvents(callerAccess(ctx), s) {
		return nil, forbidden("Subscription/%s was created by %s: this token may not see it", id, describeOwner(s.Access))
	}
	return s, nil
}

// ValidateDelete refuses (403) to delete a subscription created with an
// access the caller's does not cover.
func (h *SubscriptionHook) ValidateDelete(ctx context.Context, id string) error {
	cur, err := h.m.store.Read(ctx, "Subscription", id)
	if errors.Is(err, fhirstore.ErrNotFound) || errors.Is(err, fhirstore.ErrGone) {
		return nil // the delete handler answers
	}
	if err != nil {
		return fmt.Errorf("read Subscription/%s: %w", id, err)
	}
	_, _, err = ownership(callerAccess(ctx), cur)
	return err
}

// visible decides whether the change's focus may be notified to s: the
// subscription's access must allow reading the type and, when it is
// restricted (patient in context, granular scopes), see the focus (for a
// delete, the version deleted). Decisions of restricted accesses are
// memoised per change by Access: the subscriptions of one owner share one
// (accesses).
func (ch *loaded) visible(s *Subscription) bool {
	a := s.Access
	if !a.Allows(ch.c.Type, readPerms) {
		return false
	}
	if !a.Restricted(ch.c.Type, readPerms) {
		return true
	}
	if v, ok := ch.seen[a]; ok {
		return v
	}
	f := ch.focus()
	v := f != nil && a.CanSee(f)
	if ch.seen == nil {
		ch.seen = map[*smart.Access]bool{}
	}
	ch.seen[a] = v
	return v
}

// shows is the access decision for every resource a notification carries
// (the focus of a full-resource event, each included or additional-context
// resource): every access given must see it (smart.Access.CanSee, the
// Permits decision REST read and search apply to each resource they
// return: scopes, granular filters, the patient's compartment). A nil
// access sees nothing.
func shows(res map[string]any, accs []*smart.Access) bool {
	for _, a := range accs {
		if !a.CanSee(res) {
			return false
		}
	}
	return len(accs) > 0
}

// eventVisible decides whether an event's focus may be shown to every
// access given (for $events): each must allow reading the type and, when
// restricted, see the version (for a deletion, the version deleted).
func (m *Manager) eventVisible(ctx context.Context, ev fhirstore.Event, accs ...*smart.Access) (bool, error) {
	restricted := false
	for _, a := range accs {
		if !a.Allows(ev.Type, readPerms) {
			return false, nil
		}
		restricted = restricted || a.Restricted(ev.Type, readPerms)
	}
	if !restricted {
		return true, nil
	}
	res, err := m.store.VRead(ctx, ev.Type, ev.ID, ev.VersionID)
	if errors.Is(err, fhirstore.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read %s/%s/_history/%s: %w", ev.Type, ev.ID, ev.VersionID, err)
	}
	if res.Deleted {
		n, _ := strconv.Atoi(res.VersionID)
		if n <= 1 {
			return false, nil
		}
		if res, err = m.store.VRead(ctx, ev.Type, ev.ID, strconv.Itoa(n-1)); err != nil || res.Deleted {
			return false, nil
		}
	}
	body, err := fhirstore.Decode(res.Body)
	if err != nil {
		return false, nil
	}
	for _, a := range accs {
		if !a.CanSee(body) {
			return false, nil
		}
	}
	return true, nil
}
