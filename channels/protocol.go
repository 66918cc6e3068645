package channels

import (
	"context"
	"fmt"
	"net/http"
)

// Protocol is one websocket application protocol served by a Hub (the
// legacy JSON protocol, R4 bind, Backport bind-with-token). The hub owns the
// transport; the protocol only sees text frames and the open/close hooks.
type Protocol interface {
	// Accept runs before the upgrade, on the request's goroutine. It
	// authenticates the request and returns the per-connection Session, or
	// an error that refuses the upgrade: a *RejectError gives its status,
	// any other error 403 Forbidden.
	Accept(r *http.Request) (Session, error)
}

// Session is the per-connection state of a Protocol. The hub calls its
// methods from the connection's reader goroutine, one at a time and in this
// order: Open once, Message for each text frame, Closed once. Sessions must
// not block for long in Message (a replay may, bounded by ctx); other
// goroutines reach the connection through the *Conn given to Open.
type Session interface {
	// Open is called after the upgrade, before the first frame is read.
	Open(c *Conn)
	// Message handles one text frame. ctx is cancelled when the
	// connection closes.
	Message(ctx context.Context, data []byte)
	// Closed is called once both connection goroutines have stopped; the
	// Conn can no longer send.
	Closed(c *Conn)
}

// RejectError refuses an upgrade with an HTTP status and a reason.
type RejectError struct {
	// Status is the HTTP status (401, 403, 429, …).
	Status int
	// Reason is the plain-text body.
	Reason string
}

// Error implements error.
func (e *RejectError) Error() string {
	return fmt.Sprintf("websocket upgrade refused: %d %s", e.Status, e.Reason)
}

var _ error = (*RejectError)(nil)

// Close codes used by the hub (RFC 6455 §7.4.1 and the IANA registry).
const (
	// CloseNormal is sent when a protocol ends a connection on purpose.
	CloseNormal = 1000
	// CloseGoingAway is sent to every socket by Hub.Shutdown, with the
	// reason "server shutting down".
	CloseGoingAway = 1001
	// ClosePolicyViolation is sent when a protocol refuses a client (for
	// example a rejected session).
	ClosePolicyViolation = 1008
	// CloseMessageTooBig is sent (by gorilla/websocket) when a frame
	// exceeds Config.ReadLimit.
	CloseMessageTooBig = 1009
	// CloseInternalError is sent when the server cannot go on.
	CloseInternalError = 1011
	// CloseTryAgainLater is sent, with the reason "slow consumer", to a
	// client whose send buffer overflowed: it was not reading fast enough.
	CloseTryAgainLater = 1013
)

// Close reasons sent by the hub.
const (
	ReasonShutdown     = "server shutting down"
	ReasonSlowConsumer = "slow consumer"
)
