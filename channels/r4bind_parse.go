package channels

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// r4Kind is the kind of an R4 client message.
type r4Kind int

const (
	r4Bind r4Kind = iota + 1
	r4Auth
)

// r4Request is one parsed R4 client message.
type r4Request struct {
	kind  r4Kind
	id    string // bind
	token string // auth
}

// errUnexpected is a message that is neither a bind nor an auth message.
var errUnexpected = errors.New("unexpected client message (expected \"bind <id>\")")

// parseR4Message parses "bind <id>" (surrounding white space ignored) and
// the JSON {"type":"auth","data":{"token":"…"}}.
func parseR4Message(data []byte) (r4Request, error) {
	msg := bytes.TrimSpace(data)
	if len(msg) > 0 && msg[0] == '{' {
		var m struct {
			Type string `json:"type"`
			Data struct {
				Token string `json:"token"`
			} `json:"data"`
		}
		if err := json.Unmarshal(msg, &m); err != nil || m.Type != "auth" {
			return r4Request{}, errUnexpected
		}
		if m.Data.Token == "" {
			return r4Request{}, errors.New("auth message without data.token")
		}
		return r4Request{kind: r4Auth, token: m.Data.Token}, nil
	}
	rest, ok := bytes.CutPrefix(msg, []byte("bind "))
	if !ok {
		return r4Request{}, errUnexpected
	}
	id := string(bytes.TrimSpace(rest))
	if !isFHIRID(id) {
		return r4Request{}, fmt.Errorf("bind: %q is not a subscription id", truncate(id, 64))
	}
	return r4Request{kind: r4Bind, id: id}, nil
}

// truncate shortens s to at most n bytes for messages, keeping it valid
// UTF-8 enough for %q.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
