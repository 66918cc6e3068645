package channels

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// legacyRequest is one parsed client message.
type legacyRequest struct {
	typ   string    // ping, pong, subscribe, unsubscribe, resume or auth
	sub   legacySub // subscribe
	id    string    // unsubscribe
	since int64     // resume
	token string    // auth
}

// legacyError is the code and message of an error message.
type legacyError struct{ code, message string }

func errorf(code, format string, args ...any) *legacyError {
	return &legacyError{code: code, message: fmt.Sprintf(format, args...)}
}

// parseLegacyRequest parses and checks one client message, independently
// of the connection's state (limits and access are the session's).
func parseLegacyRequest(data []byte, maxPatients int) (legacyRequest, *legacyError) {
	var msg struct {
		Type  *string         `json:"type"`
		Data  json.RawMessage `json:"data"`
		Token *string         `json:"token"` // the original dialect's authenticate
	}
	if err := json.Unmarshal(data, &msg); err != nil {
		return legacyRequest{}, errorf(LegacyErrInvalidJSON, "message is not a JSON object: %v", err)
	}
	if msg.Type == nil {
		return legacyRequest{}, errorf(LegacyErrMissingField, "type is required")
	}
	req := legacyRequest{typ: *msg.Type}
	var perr *legacyError
	switch req.typ {
	case "ping", "pong":
	case "subscribe":
		req.sub, perr = parseSubscribe(msg.Data, maxPatients)
	case "unsubscribe":
		req.id, perr = parseUnsubscribe(msg.Data)
	case "resume":
		req.since, perr = parseResume(msg.Data)
	case "auth", "authenticate":
		// {"type":"auth","data":{"token":…}} or, as the original client
		// sends it, {"type":"authenticate","token":…}
		req.typ = "auth"
		if msg.Token != nil && *msg.Token != "" {
			req.token = *msg.Token
		} else {
			req.token, perr = parseAuth(msg.Data)
		}
	default:
		perr = errorf(LegacyErrUnknownType, "unknown message type %q (expected subscribe, unsubscribe, ping, resume or auth)", req.typ)
	}
	return req, perr
}

func parseData(raw json.RawMessage, v any) *legacyError {
	if len(raw) == 0 || string(raw) == "null" {
		return errorf(LegacyErrMissingField, "data is required")
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return errorf(LegacyErrInvalidField, "data: %v", err)
	}
	return nil
}

func parseSubscribe(raw json.RawMessage, maxPatients int) (legacySub, *legacyError) {
	var d struct {
		SubscriptionID *string   `json:"subscription_id"`
		ResourceTypes  *[]string `json:"resource_types"`
		PatientIDs     []string  `json:"patient_ids"`
	}
	if perr := parseData(raw, &d); perr != nil {
		return legacySub{}, perr
	}
	if d.SubscriptionID == nil || *d.SubscriptionID == "" {
		return legacySub{}, errorf(LegacyErrMissingField, "data.subscription_id is required")
	}
	sub := legacySub{id: *d.SubscriptionID}
	if len(sub.id) > 128 {
		return legacySub{}, errorf(LegacyErrInvalidField, "data.subscription_id is longer than 128 characters")
	}
	// Missing, empty or ["*"]: every type. The lists are echoed as sent in
	// the original dialect's ack.
	sub.echoTypes, sub.echoPatients = []string{}, []string{}
	if d.ResourceTypes == nil || len(*d.ResourceTypes) == 0 {
		sub.allTypes = true
	} else {
		sub.echoTypes = *d.ResourceTypes
	}
	for _, t := range sub.echoTypes {
		switch {
		case t == "*":
			sub.allTypes = true
		case isTypeName(t):
			if !slices.Contains(sub.types, t) {
				sub.types = append(sub.types, t)
			}
		default:
			return legacySub{}, errorf(LegacyErrInvalidField, "data.resource_types: %q is not a resource type", t)
		}
	}
	if len(d.PatientIDs) > maxPatients {
		return legacySub{}, errorf(LegacyErrInvalidField, "data.patient_ids lists more than %d patients", maxPatients)
	}
	if d.PatientIDs != nil {
		sub.echoPatients = d.PatientIDs
	}
	if slices.Contains(d.PatientIDs, "*") {
		return sub, nil // every patient the caller may see
	}
	for _, p := range d.PatientIDs {
		p = strings.TrimPrefix(p, "Patient/")
		if !isFHIRID(p) {
			return legacySub{}, errorf(LegacyErrInvalidField, "data.patient_ids: %q is not a patient id", p)
		}
		if !slices.Contains(sub.patients, p) {
			sub.patients = append(sub.patients, p)
		}
	}
	return sub, nil
}

func parseUnsubscribe(raw json.RawMessage) (string, *legacyError) {
	var d struct {
		SubscriptionID *string `json:"subscription_id"`
	}
	if perr := parseData(raw, &d); perr != nil {
		return "", perr
	}
	if d.SubscriptionID == nil || *d.SubscriptionID == "" {
		return "", errorf(LegacyErrMissingField, "data.subscription_id is required")
	}
	return *d.SubscriptionID, nil
}

func parseAuth(raw json.RawMessage) (string, *legacyError) {
	var d struct {
		Token *string `json:"token"`
	}
	if perr := parseData(raw, &d); perr != nil {
		return "", perr
	}
	if d.Token == nil || *d.Token == "" {
		return "", errorf(LegacyErrMissingField, "data.token is required")
	}
	return *d.Token, nil
}

func parseResume(raw json.RawMessage) (int64, *legacyError) {
	var d struct {
		Since json.RawMessage `json:"since"`
	}
	if perr := parseData(raw, &d); perr != nil {
		return 0, perr
	}
	if len(d.Since) == 0 || string(d.Since) == "null" {
		return 0, errorf(LegacyErrMissingField, "data.since is required")
	}
	since, err := strconv.ParseInt(string(d.Since), 10, 64)
	if err != nil || since < 0 {
		return 0, errorf(LegacyErrInvalidField, "data.since must be a non-negative integer")
	}
	return since, nil
}

func isTypeName(s string) bool {
	if s == "" || len(s) > 64 || s[0] < 'A' || s[0] > 'Z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func isFHIRID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}
