package channels

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/fhirsub/fhirsub/conformance/smart"
)

// Error codes of the legacy protocol's authentication (the connection is
// closed with 1008 after them).
const (
	LegacyErrUnauthenticated = "unauthenticated"
	LegacyErrInvalidToken    = "invalid_token"
)

// ReasonTokenExpired is the close reason (code 1008) of a connection whose
// token expired. The other authentication close reasons are shared with the
// R4 and Backport protocols (ReasonAuthRequired, ReasonAuthTimeout,
// ReasonInvalidToken).
const ReasonTokenExpired = "token-expired"

// Authentication states of a legacy session.
const (
	authPending int32 = iota
	authDone
	authFailed
)

// AccessFor returns the LegacyAccess of a verified token: its patient's
// compartment when it has a patient in context, else every patient, and in
// both cases only what the token's scopes let it read.
func AccessFor(a *smart.Access) LegacyAccess {
	la := LegacyAccess{Token: a}
	if a.Patient != "" {
		la.Patients = []string{a.Patient}
	} else {
		la.AllPatients = true
	}
	return la
}

// bearerOf returns the token of the request: the access_token or token
// query parameter (browsers cannot set headers on a websocket; the
// original MedGenEMR client sends ?token=) or an Authorization: Bearer
// header.
func bearerOf(r *http.Request) (string, bool) {
	for _, name := range []string{"access_token", "token"} {
		if r.URL.Query().Has(name) {
			return r.URL.Query().Get(name), true
		}
	}
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, _ := strings.Cut(h, " ")
		if strings.EqualFold(scheme, "Bearer") {
			return strings.TrimSpace(tok), true
		}
		return "", true
	}
	return "", false
}

// acceptToken authenticates an upgrade request with Verifier: a token in
// the request must be valid, else the upgrade is refused with 401 (or, in
// the original dialect, whose browsers cannot read an HTTP status, the
// session starts failed and is closed with 4001 once open); without one
// the session starts pending and must send an auth message within
// AuthTimeout.
func (l *Legacy) acceptToken(r *http.Request, d *dialect) (LegacyAccess, int32, error) {
	raw, found := bearerOf(r)
	if !found {
		return LegacyAccess{}, authPending, nil
	}
	acc, err := l.cfg.Verifier.Verify(r.Context(), raw)
	if err != nil {
		if d.closeUnauthorized != 0 {
			return LegacyAccess{}, authFailed, nil
		}
		return LegacyAccess{}, authFailed, &RejectError{Status: http.StatusUnauthorized, Reason: "invalid bearer token: " + tokenReason(err)}
	}
	return AccessFor(acc), authDone, nil
}

// tokenReason is a short, safe description of a Verify error.
func tokenReason(err error) string {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "invalid token: ")
	if i := strings.Index(msg, ": "); i > 0 {
		msg = msg[:i]
	}
	if len(msg) > 100 {
		msg = msg[:100]
	}
	return msg
}

// expiryOf returns the exp claim of a token's access (zero when there is
// none, e.g. an access not decoded from claims).
func expiryOf(a *smart.Access) time.Time {
	var sec float64
	switch v := a.Claims["exp"].(type) {
	case float64:
		sec = v
	case json.Number:
		sec, _ = v.Float64()
	case int64:
		sec = float64(v)
	default:
		return time.Time{}
	}
	return time.Unix(int64(sec), 0)
}

// startAuthTimer arms the deadline of a pending session's auth message.
func (s *legacySession) startAuthTimer() {
	s.authTimer = time.AfterFunc(s.l.cfg.AuthTimeout, func() {
		if s.authState.CompareAndSwap(authPending, authFailed) {
			s.refuse(LegacyErrUnauthenticated, fmt.Sprintf("no auth message within %v", s.l.cfg.AuthTimeout), ReasonAuthTimeout)
		}
	})
}

// armExpiry closes the connection (1008 "token-expired") when the token's
// exp passes (Conn.ExpireAt): a websocket must not outlive the token that
// opened it.
func (s *legacySession) armExpiry() {
	if t := s.access.Token; t != nil {
		// The client reconnects at once with a fresh token: announce the
		// departure before the close (see depart).
		s.conn.ExpireAt(expiryOf(t), s.depart)
	}
}

// stopTimers stops the authentication and heartbeat timers (the
// connection stops its expiry timer itself).
func (s *legacySession) stopTimers() {
	if s.authTimer != nil {
		s.authTimer.Stop()
	}
	s.mu.Lock()
	if s.heartbeat != nil {
		s.heartbeat.Stop()
		s.heartbeat = nil
	}
	s.mu.Unlock()
}

// authenticate handles the messages of a pending session: the first one
// must be {"type":"auth","data":{"token":"…"}} with a valid token.
// Anything else, or a refused token, gets an error message and close 1008.
func (s *legacySession) authenticate(ctx context.Context, data []byte) {
	req, perr := parseLegacyRequest(data, s.l.cfg.MaxPatients)
	if perr == nil && req.typ != "auth" {
		perr = errorf(LegacyErrUnauthenticated, `authenticate first: {"type":"auth","data":{"token":"<bearer token>"}}`)
	}
	if perr == nil {
		acc, err := s.l.cfg.Verifier.Verify(ctx, req.token)
		if err != nil {
			perr = errorf(LegacyErrInvalidToken, "token rejected: %s", tokenReason(err))
		} else if s.authState.CompareAndSwap(authPending, authDone) {
			s.authTimer.Stop()
			s.access = AccessFor(acc)
			if s.d.seq {
				s.send(controlMessage("authenticated", s.l.Head(), map[string]any{"patient": nullable(acc.Patient)}))
			}
			s.armExpiry()
			s.begin()
			return
		} else {
			return // the deadline passed meanwhile: already closing
		}
	}
	if s.authState.CompareAndSwap(authPending, authFailed) {
		s.authTimer.Stop()
		reason := ReasonAuthRequired
		if perr.code == LegacyErrInvalidToken {
			reason = ReasonInvalidToken
		}
		s.refuse(perr.code, perr.message, reason)
	}
}

// refuse ends a session whose authentication failed: in the original
// dialect with close 4001 "Unauthorized", else with an error message and
// close 1008 reason.
func (s *legacySession) refuse(code, message, reason string) {
	if s.d.closeUnauthorized != 0 {
		s.conn.Close(s.d.closeUnauthorized, s.d.unauthorizedText)
		return
	}
	s.failAndClose(code, message, reason)
}

// failAndClose sends an error message and, once it is written (or after a
// second), closes the connection with 1008 and reason. Conn.Close drops
// queued frames, so it waits for Conn.Written to show the frame: only for
// sessions that have sent no seq-tagged frame (pending authentication),
// whose error frame is tagged 1.
func (s *legacySession) failAndClose(code, message, reason string) {
	c := s.conn
	if c.Send(errorMessage(code, message), 1) {
		deadline := time.Now().Add(time.Second)
		for c.Written() < 1 && c.Context().Err() == nil && time.Now().Before(deadline) {
			time.Sleep(2 * time.Millisecond)
		}
	}
	c.Close(ClosePolicyViolation, reason)
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// owner identifies whose a client_id record is: a reconnect restores it
// only for the same token subject and patient.
func (a LegacyAccess) owner() string {
	if a.Token == nil {
		return ""
	}
	return a.Token.Subject + "|" + a.Token.Patient
}

// check reports why sub is outside the caller's access ("" when it is
// not): a patient outside the caller's patients, or a type its token may
// not read.
func (a LegacyAccess) check(sub legacySub) string {
	if !a.AllPatients {
		for _, p := range sub.patients {
			if !slices.Contains(a.Patients, p) {
				return "patient_ids name a patient outside the caller's access"
			}
		}
	}
	if t := a.Token; t != nil {
		if !t.AllowsAny(smart.Read | smart.Search) {
			return "the token's scopes allow reading nothing"
		}
		for _, typ := range sub.types {
			if !t.CanRead(typ) {
				return fmt.Sprintf("the token's scopes do not allow reading %s", typ)
			}
		}
	}
	return ""
}

// visibleTo decides whether the event's resource may be shown to a token:
// its type must be readable and the resource visible (CanSee on the focus;
// without the focus, the compartments of its PatientIDs).
func (ev *LegacyEvent) visibleTo(a *smart.Access) bool {
	const p = smart.Read | smart.Search
	if !a.Allows(ev.ResourceType, p) {
		return false
	}
	if !a.Restricted(ev.ResourceType, p) || a.CanSeeCompartment(ev.ResourceType, ev.PatientIDs) {
		return true
	}
	f := ev.focusMap()
	return f != nil && a.CanSee(f)
}

// errNoFocus is returned by decodeFocus for an event without one.
var errNoFocus = errors.New("no focus")

// focusState is the lazily decoded focus of an event.
type focusState struct {
	raw     json.RawMessage
	decoded atomic.Pointer[map[string]any]
	failed  atomic.Bool
}

func (f *focusState) get() map[string]any {
	if p := f.decoded.Load(); p != nil {
		return *p
	}
	if f.failed.Load() || len(f.raw) == 0 {
		return nil
	}
	m, err := decodeFocus(f.raw)
	if err != nil {
		f.failed.Store(true)
		return nil
	}
	f.decoded.Store(&m)
	return m
}

func decodeFocus(raw json.RawMessage) (map[string]any, error) {
	if len(raw) == 0 {
		return nil, errNoFocus
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	return m, nil
}
