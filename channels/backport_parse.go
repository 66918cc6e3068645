package channels

import (
	"bytes"
	"encoding/json"
	"errors"
)

// backportKind is the kind of a Backport client message.
type backportKind int

const (
	bpBind backportKind = iota + 1
	bpUnbind
	bpPing
)

// backportRequest is one parsed Backport client message.
type backportRequest struct {
	kind  backportKind
	token string // bind, unbind
}

// errExpectedBind is any message the Backport protocol does not know.
var errExpectedBind = errors.New(`expected "bind-with-token <token>", "unbind-from-token <token>" or {"type":"ping"}`)

// parseBackportMessage parses the text forms "bind-with-token <t>" and
// "bind-with-token: <t>" (likewise unbind-from-token), and the JSON forms
// {"type":"bind-with-token","payload":{"token":"…"}},
// {"type":"unbind-from-token","payload":{"token":"…"}} and
// {"type":"ping"}. Surrounding white space is ignored.
func parseBackportMessage(data []byte) (backportRequest, error) {
	msg := bytes.TrimSpace(data)
	if len(msg) > 0 && msg[0] == '{' {
		var m struct {
			Type    string `json:"type"`
			Payload struct {
				Token string `json:"token"`
			} `json:"payload"`
		}
		if err := json.Unmarshal(msg, &m); err != nil {
			return backportRequest{}, errExpectedBind
		}
		switch m.Type {
		case "ping":
			return backportRequest{kind: bpPing}, nil
		case "bind-with-token":
			return tokenRequest(bpBind, m.Payload.Token)
		case "unbind-from-token":
			return tokenRequest(bpUnbind, m.Payload.Token)
		}
		return backportRequest{}, errExpectedBind
	}
	if string(msg) == "ping" {
		return backportRequest{kind: bpPing}, nil
	}
	for _, v := range []struct {
		verb string
		kind backportKind
	}{{"bind-with-token", bpBind}, {"unbind-from-token", bpUnbind}} {
		rest, ok := bytes.CutPrefix(msg, []byte(v.verb))
		if !ok {
			continue
		}
		if r, colon := bytes.CutPrefix(rest, []byte(":")); colon {
			rest = r
		}
		if len(rest) == 0 || rest[0] != ' ' && rest[0] != '\t' {
			break // "bind-with-tokenX", or no token
		}
		return tokenRequest(v.kind, string(bytes.TrimSpace(rest)))
	}
	return backportRequest{}, errExpectedBind
}

// tokenRequest checks that a token is present and has JWT characters.
func tokenRequest(kind backportKind, tok string) (backportRequest, error) {
	if tok == "" || len(tok) > maxBindingToken {
		return backportRequest{}, errors.New("missing or oversized token")
	}
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '=') {
			return backportRequest{}, errors.New("malformed token")
		}
	}
	return backportRequest{kind: kind, token: tok}, nil
}
