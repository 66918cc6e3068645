package legacy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/fhirsub/fhirsub/channels"
	"github.com/fhirsub/fhirsub/conformance/search"
	"github.com/fhirsub/fhirsub/fhirstore"
	"github.com/fhirsub/fhirsub/subscriptions"
	"github.com/fhirsub/fhirsub/topics"
)

// Events builds the legacy messages of one change, reading its versions
// from the store (replays older than the cache; live changes come with
// their versions through Change). A version that no longer exists gives no
// message (nil, nil); other store errors are returned (the caller
// retries).
func (f *Feed) Events(ctx context.Context, c fhirstore.Change) ([]*channels.LegacyEvent, error) {
	return f.fromVersions(c, &storeVersions{ctx: ctx, store: f.store, c: c})
}

// fromVersions builds the legacy messages of change c from its versions:
// the update message, then one clinical_event per topic it fires.
func (f *Feed) fromVersions(c fhirstore.Change, v subscriptions.Versions) ([]*channels.LegacyEvent, error) {
	cur, err := v.Resource()
	switch {
	case errors.Is(err, fhirstore.ErrNotFound):
		f.log.Warn("legacy feed: changed version not found", "seq", c.Seq, "type", c.Type, "id", c.ID, "version", c.VersionID)
		return nil, nil
	case err != nil && cur == nil:
		return nil, fmt.Errorf("read %s/%s/_history/%s: %w", c.Type, c.ID, c.VersionID, err)
	case err != nil:
		f.log.Error("legacy feed: stored version is not JSON", "seq", c.Seq, "type", c.Type, "id", c.ID, "error", err)
		return nil, nil
	}
	curMap, _ := v.Current()
	prevMap, err := v.Previous()
	if err != nil {
		// the previous version only refines patients and triggers
		f.log.Debug("legacy feed: previous version unreadable", "seq", c.Seq, "type", c.Type, "id", c.ID, "error", err)
		prevMap = nil
	}

	action := channels.ActionUpdated
	switch {
	case c.Interaction == fhirstore.InteractionDelete || cur.Deleted:
		action = channels.ActionDeleted
	case c.Interaction == fhirstore.InteractionCreate:
		action = channels.ActionCreated
	}
	focus := curMap
	if action == channels.ActionDeleted {
		focus, curMap = prevMap, nil
	}
	var patients []string
	if focus != nil {
		patients = search.PatientIDs(focus)
	}
	u := channels.LegacyUpdate{Seq: c.Seq, Time: c.Time, Action: action, ResourceType: c.Type,
		ResourceID: c.ID, PatientIDs: patients}
	if action != channels.ActionDeleted {
		u.Resource = cur.Body
		if f.cfg.Redact != nil {
			if shown := f.cfg.Redact(c.Type, cur.Body); !bytes.Equal(shown, cur.Body) {
				// Access is judged on the stored version (a Subscription's
				// compartment comes from what Redact removes).
				u.Resource, u.Focus = shown, curMap
			}
		}
	}
	update, err := channels.NewLegacyUpdate(u)
	if err != nil {
		f.log.Error("legacy feed: cannot encode update", "seq", c.Seq, "error", err)
		return nil, nil
	}
	events := []*channels.LegacyEvent{update}

	change := topics.Change{Interaction: string(c.Interaction), ResourceType: c.Type, Previous: prevMap, Current: curMap}
	if action == channels.ActionCreated {
		change.Interaction, change.Previous = topics.Create, nil
	}
	for _, t := range f.cfg.Topics {
		if t.EventType == "" || !slices.Contains(t.ResourceTypes(), c.Type) {
			continue
		}
		fired, err := t.Triggered(change)
		if err != nil {
			f.log.Debug("legacy feed: topic evaluation failed", "seq", c.Seq, "topic", t.URL, "error", err)
		}
		if !fired {
			continue
		}
		ev, err := channels.NewLegacyClinicalEvent(channels.LegacyClinicalEvent{
			Seq: c.Seq, Time: c.Time, EventType: t.EventType, ResourceType: c.Type, ResourceID: c.ID, PatientIDs: patients,
			Details: details(t, c, action, focus),
		})
		if err != nil {
			f.log.Error("legacy feed: cannot encode clinical event", "seq", c.Seq, "topic", t.URL, "error", err)
			continue
		}
		events = append(events, ev)
	}
	return events, nil
}

// storeVersions reads a change's versions from the store, each once
// (subscriptions.Versions for a replay).
type storeVersions struct {
	ctx   context.Context
	store Store
	c     fhirstore.Change

	res           *fhirstore.Resource
	cur, prev     map[string]any
	resErr        error
	resOK, prevOK bool
	prevErr       error
}

func (v *storeVersions) Resource() (*fhirstore.Resource, error) {
	if !v.resOK {
		v.resOK = true
		v.res, v.resErr = v.store.VRead(v.ctx, v.c.Type, v.c.ID, v.c.VersionID)
		if v.resErr == nil && !v.res.Deleted {
			v.cur, v.resErr = fhirstore.Decode(v.res.Body)
		}
	}
	return v.res, v.resErr
}

func (v *storeVersions) Current() (map[string]any, error) {
	_, err := v.Resource()
	return v.cur, err
}

func (v *storeVersions) Previous() (map[string]any, error) {
	if !v.prevOK && v.c.PreviousVersionID != "" {
		v.prevOK = true
		res, err := v.store.VRead(v.ctx, v.c.Type, v.c.ID, v.c.PreviousVersionID)
		switch {
		case errors.Is(err, fhirstore.ErrNotFound):
		case err != nil:
			v.prevErr = err
		case !res.Deleted:
			v.prev, v.prevErr = fhirstore.Decode(res.Body)
		}
	}
	return v.prev, v.prevErr
}

// details is the "details" object of a clinical event: what a dashboard
// shows without fetching the resource.
func details(t *topics.Topic, c fhirstore.Change, action string, res map[string]any) map[string]any {
	d := map[string]any{
		"topic":         t.URL,
		"title":         t.Title,
		"action":        action,
		"resource_type": c.Type,
		"resource_id":   c.ID,
		"version_id":    c.VersionID,
	}
	if res == nil {
		return d
	}
	if s, ok := res["status"].(string); ok {
		d["status"] = s
	}
	for _, key := range []string{"code", "medicationCodeableConcept", "category", "reasonCode"} {
		if code, display, system := firstCoding(res[key]); code != "" || display != "" {
			d["code"], d["display"] = code, display
			if system != "" {
				d["code_system"] = system
			}
			break
		}
	}
	if v, unit := value(res); v != nil {
		d["value"] = v
		if unit != "" {
			d["unit"] = unit
		}
	}
	var interp []string
	for _, cc := range asList(res["interpretation"]) {
		for _, coding := range asList(asMap(cc)["coding"]) {
			if code, _ := asMap(coding)["code"].(string); code != "" {
				interp = append(interp, code)
			}
		}
	}
	if len(interp) > 0 {
		d["interpretation"] = interp
	}
	for _, key := range []string{"priority", "intent", "effectiveDateTime", "issued", "authoredOn"} {
		if s, ok := res[key].(string); ok {
			d[strings.ToLower(key[:1])+snake(key[1:])] = s
		}
	}
	return d
}

// firstCoding reads a CodeableConcept (or the first of a list of them).
func firstCoding(v any) (code, display, system string) {
	cc := asMap(v)
	if cc == nil {
		if l := asList(v); len(l) > 0 {
			cc = asMap(l[0])
		}
	}
	if cc == nil {
		return "", "", ""
	}
	display, _ = cc["text"].(string)
	for _, raw := range asList(cc["coding"]) {
		coding := asMap(raw)
		code, _ = coding["code"].(string)
		system, _ = coding["system"].(string)
		if display == "" {
			display, _ = coding["display"].(string)
		}
		if code != "" {
			break
		}
	}
	return code, display, system
}

// value reads Observation.value[x]: a number for a Quantity (with its
// unit), else a string.
func value(res map[string]any) (any, string) {
	if q := asMap(res["valueQuantity"]); q != nil {
		unit, _ := q["unit"].(string)
		if unit == "" {
			unit, _ = q["code"].(string)
		}
		if n, ok := q["value"].(json.Number); ok {
			return n, unit
		}
		return nil, ""
	}
	if _, display, _ := firstCoding(res["valueCodeableConcept"]); display != "" {
		return display, ""
	}
	for _, key := range []string{"valueString", "valueBoolean", "valueInteger", "valueDateTime"} {
		if v, ok := res[key]; ok {
			return v, ""
		}
	}
	return nil, ""
}

func snake(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= 'A' && r <= 'Z' {
			b.WriteByte('_')
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

func asMap(v any) map[string]any { m, _ := v.(map[string]any); return m }
func asList(v any) []any         { l, _ := v.([]any); return l }
