package channels

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

// LegacyDialect selects the wire format of a legacy endpoint. Both dialects
// share one implementation (subscriptions, filters, access, replay); they
// differ only by the rules of the dialects table below.
type LegacyDialect uint8

const (
	// DialectExtended is fhirsub's dialect (on /ws, for web/client): every
	// message carries the change seq, resume and client_id replay,
	// clinical events as "clinical_event" messages, patient_id on
	// deletions, error frames for every refused message.
	DialectExtended LegacyDialect = iota
	// DialectOriginal is the original MedGenEMR notification service's
	// dialect (on /api/ws and /api/ws/{client_id}), exactly as its browser
	// client speaks it: a welcome message, "subscription" acks, clinical
	// events as "update" messages, JSON ping frames, unknown messages
	// ignored. A re-subscribed subscription_id gets what it missed
	// replayed from its persisted position (LegacyConfig.Positions).
	DialectOriginal
)

// dialect is what differs between the two dialects. Everything else is
// shared code.
type dialect struct {
	name string
	// seq: server messages carry the change seq, acks are
	// subscribed/unsubscribed and unsubscribing an unknown id is an error.
	seq bool
	// welcome: a welcome message opens the session.
	welcome bool
	// ignoreUnknown: unknown message types are ignored, not answered with
	// an error frame.
	ignoreUnknown bool
	// paced: a client over the message rate is slowed down (its messages
	// wait) instead of being answered with rate_limited.
	paced bool
	// rateFactor multiplies LegacyConfig.MessageRate and MessageBurst:
	// the original client's hooks unsubscribe and subscribe on every
	// render, cheap messages that must not lag behind the updates.
	rateFactor int
	// heartbeat: the server sends a JSON ping every
	// LegacyConfig.Heartbeat; the client's pong is accepted silently.
	heartbeat bool
	// restoreClientID: a reconnect with a known client_id restores its
	// subscriptions and replays from its position (in memory).
	restoreClientID bool
	// persistPositions: a subscription_id subscribed again on a new
	// connection by the same caller replays what it missed (durably).
	persistPositions bool
	// replayAtLeast: a replay longer than ReplayLimit changes reads
	// further back until it has this many messages (see runReplay); 0
	// replays the last ReplayLimit changes only.
	replayAtLeast int
	// closeUnauthorized: a refused token (in the URL or the
	// authenticate message) closes the socket with this code and reason;
	// 0 refuses a bad URL token at the upgrade (401) and closes 1008
	// after a bad auth message.
	closeUnauthorized int
	unauthorizedText  string
}

// dialects is the table of the two dialects.
var dialects = [...]dialect{
	DialectExtended: {name: "extended", seq: true, restoreClientID: true, rateFactor: 1},
	DialectOriginal: {name: "original", welcome: true, ignoreUnknown: true, paced: true, rateFactor: 10, heartbeat: true,
		persistPositions: true, replayAtLeast: 100, closeUnauthorized: CloseUnauthorized, unauthorizedText: "Unauthorized"},
}

// CloseUnauthorized is the close code of the original dialect for a
// missing or refused token (with the reason "Unauthorized").
const CloseUnauthorized = 4001

// subscribedAck is the answer to a subscribe.
func (d *dialect) subscribedAck(sub legacySub, head int64, restored bool) []byte {
	if d.seq {
		data := map[string]any{"subscription_id": sub.id}
		if restored {
			data["restored"] = true
		}
		return controlMessage("subscribed", head, data)
	}
	return originalMessage("subscription", map[string]any{"action": "created", "subscription_id": sub.id,
		"resource_types": sub.echoTypes, "patient_ids": sub.echoPatients}, false)
}

// unsubscribedAck is the answer to an unsubscribe.
func (d *dialect) unsubscribedAck(id string, head int64) []byte {
	if d.seq {
		return controlMessage("unsubscribed", head, map[string]any{"subscription_id": id})
	}
	return originalMessage("subscription", map[string]any{"action": "removed", "subscription_id": id}, false)
}

// originalMessage encodes a server message of the original dialect; with
// stamped, it carries "timestamp" and "message_id":null like its updates
// and pings.
func originalMessage(typ string, data any, stamped bool) []byte {
	if !stamped {
		b, _ := json.Marshal(struct {
			Type string `json:"type"`
			Data any    `json:"data"`
		}{typ, data})
		return b
	}
	b, _ := json.Marshal(struct {
		Type      string `json:"type"`
		Data      any    `json:"data"`
		Timestamp string `json:"timestamp"`
		MessageID *int   `json:"message_id"`
	}{typ, data, timestamp(time.Time{}), nil})
	return b
}

// welcomeMessage opens an original-dialect session: the client id and the
// token's claims (null without authentication).
func welcomeMessage(clientID string, claims map[string]any, reconnected bool) []byte {
	data := map[string]any{"client_id": clientID, "user": nil}
	if claims != nil {
		data["user"] = claims
	}
	if reconnected {
		data["reconnected"] = true
	}
	return originalMessage("welcome", data, false)
}

// legacyEndpoint is one dialect of a Legacy, as a Protocol for Hub.Handler.
type legacyEndpoint struct {
	l     *Legacy
	d     LegacyDialect
	mount string // original dialect: the path under which /{client_id} follows
}

// Accept implements Protocol.
func (e legacyEndpoint) Accept(r *http.Request) (Session, error) {
	return e.l.accept(r, e.d, e.mount)
}

// Original returns the original MedGenEMR dialect as a Protocol for
// Hub.Handler, to mount on mount (e.g. "/api/ws") and on mount+"/*": a path
// mount+"/{client_id}" reconnects under that client id (the welcome then
// says "reconnected":true); any other path gets a new one.
func (l *Legacy) Original(mount string) Protocol {
	return legacyEndpoint{l: l, d: DialectOriginal, mount: strings.TrimRight(mount, "/")}
}

// clientIDFromPath returns the {client_id} of an original-dialect path
// (mount/{client_id}), "" for mount itself, and false for anything else.
func clientIDFromPath(path, mount string) (string, bool) {
	rest, ok := strings.CutPrefix(path, mount)
	if !ok {
		return "", false
	}
	rest = strings.TrimPrefix(rest, "/")
	if strings.Contains(rest, "/") {
		return "", false
	}
	return rest, true
}
