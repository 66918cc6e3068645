package subscriptions

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/fhirsub/fhirsub/fhirstore"
	"github.com/fhirsub/fhirsub/subscriptions/delivery"
	"github.com/fhirsub/fhirsub/topics"
)

// deliverer is the last stage of the pipeline for rest-hook
// subscriptions (and the activation of websocket ones): its workers take
// subscription ids from the queue and do their pending work — end,
// activation, handshake, events, heartbeat — on the node that holds the
// subscription's partition, keeping the delivery state and the
// subscription's status in the stores. The scheduler wakes it for due
// retries, heartbeats and ends.
type deliverer struct {
	cfg    *Config // read-only after New
	store  fhirstore.Store
	events fhirstore.EventStore
	sender Sender
	reg    *registry
	bodies *bodies      // kept by the write hook for setStatus
	buf    *stateBuffer // delivery states saved behind
	queue  *delivery.Queue
	sched  *delivery.Schedule
	lanes  *lanes
	lag    *lagTracker
	owns   func(id string) bool
	notes  notifier
	parse  func(body map[string]any, res *fhirstore.Resource) (*Subscription, error)
	topic  func(url string) (*topics.Topic, bool) // the topic registry's current topic
	log    *slog.Logger
}

// notifier builds notification Bundles (Manager.Notification).
type notifier interface {
	Notification(ctx context.Context, s *Subscription, n Notice) (*Bundle, error)
}

// workLoop is one delivery worker.
func (d *deliverer) workLoop(ctx context.Context) {
	for {
		id, ok := d.queue.Pop(ctx)
		if !ok {
			return
		}
		if err := d.deliver(ctx, id); err != nil && ctx.Err() == nil {
			d.log.Error("delivery bookkeeping failed", "subscription", id, "err", err)
			d.sched.SetNext(id, d.cfg.Now().Add(d.cfg.RetryBase))
		}
		d.queue.Done(id)
	}
}

// deliver does the pending work of one subscription: end, activation,
// handshake, events, heartbeat — only on the node that holds the
// subscription's partition (see Cluster). Only one deliver runs per
// subscription at a time. A returned error is a bookkeeping failure
// (store); delivery failures are handled here.
func (d *deliverer) deliver(ctx context.Context, id string) error {
	s, ok := d.reg.get(id)
	if !ok || !d.owns(id) { // gone, or another node holds its partition
		if !ok {
			d.sched.Forget(id)
		}
		d.lanes.drop(id)
		d.lag.forget(id)
		return nil
	}
	now := d.cfg.Now()
	if s.Status == StatusOff || s.ChannelType != ChannelRestHook {
		d.lanes.drop(id)
		d.lag.forget(id)
	}
	if s.Status == StatusOff {
		return nil
	}
	if s.ended(now) {
		_, err := d.setStatus(ctx, s, StatusOff, "")
		return err
	}
	if s.ChannelType != ChannelRestHook {
		// websocket: nothing to hand-shake over HTTP; the socket binding
		// sends its own handshake
		if s.Status == StatusRequested {
			_, err := d.setStatus(ctx, s, StatusActive, "")
			return err
		}
		return nil
	}
	ln, err := d.lane(ctx, s)
	if err != nil {
		return err
	}
	fresh := ln.fresh // its state was read just now, event count included
	ln.fresh = false
	d.lag.failing(id, ln.st.ConsecutiveFailures > 0)
	if next := ln.st.NextAttempt; !next.IsZero() && now.Before(next) {
		d.sched.SetNext(id, next)
		return nil
	}
	d.sched.SetNext(id, time.Time{}) // this is the attempt; a failure schedules the next
	if s.Status == StatusRequested {
		if s.Classic() {
			// classic R4 has no handshake: the server activates at once
			if s, err = d.setStatus(ctx, s, StatusActive, ""); err != nil || s == nil {
				return err
			}
		} else {
			return d.handshake(ctx, s, ln, fresh)
		}
	}
	batch := 1
	if !s.Classic() {
		batch = cmp.Or(int(s.MaxCount), DefaultMaxCount)
	}
	evs, err := d.pending(ctx, id, ln, batch)
	if err != nil {
		d.lanes.drop(id)
		return fmt.Errorf("read events: %w", err)
	}
	d.lag.attempt(id, ln.st.Delivered, evs)
	if len(evs) == 0 {
		_, comm := d.sched.Times(id)
		if s.Heartbeat > 0 && !s.Classic() && now.Sub(comm) >= s.Heartbeat {
			return d.heartbeat(ctx, s, ln)
		}
		if ln.st.Delivered == 0 {
			// Never had an event to send (just hand-shaken, say): no
			// lane is kept for it, so that many idle subscriptions cost
			// no memory for one. Its state is the buffer's or the
			// store's; its first event builds a lane again.
			d.lanes.drop(id)
		}
		return nil
	}
	before := ln.st.Delivered
	done, err := d.run(ctx, s, ln, evs, batch)
	if err != nil || !done {
		return err // a failure (recorded by failed), or shutting down / partition moved
	}
	last := ln.st.Delivered
	if err := d.succeeded(ctx, s, ln); err != nil {
		return err
	}
	var next time.Time
	if len(ln.ahead) > 0 {
		next = ln.ahead[0].Time
	}
	d.lag.delivered(id, last, next)
	if before/pruneEvery != last/pruneEvery {
		if err := d.events.Prune(ctx, id, d.cfg.Retention); err != nil {
			d.log.Warn("prune events", "subscription", id, "err", err)
		}
	}
	// Events recorded from now on are pushed by the dispatch; what the
	// run left is pushed here.
	if ln.pendingWork() {
		d.queue.Push(id)
	}
	return nil
}

// DefaultMaxCount is the most events one notification Bundle carries for
// a topic-based subscription without backport-max-count, on rest-hook and
// on a Backport websocket binding alike. A subscription that keeps up
// gets each event alone, as it is recorded; one whose events wait (a
// receiver slower than its events, or back after a failure) gets up to
// this many together, in order, rather than a round trip per event. The
// IG sets no limit when the extension is absent. Measured with
// fhirsub-load e2e (1,000 writes/s, all to one rest-hook subscription,
// medians of 3): p99 from POST to arrival 28.7 ms with one event per
// notification, 15.3 ms with the events that waited sent together.
// Classic R4 subscriptions always get one resource per notification.
const DefaultMaxCount = 20

// A run: an active subscription with a backlog gets its next
// notifications sent back to back by the same worker, and its delivery
// state saved once at the end, so that one subscription's throughput is
// not one save's commit per notification. A run stops after runMax
// notifications or runFor, whichever comes first, to be fair to the
// other subscriptions. A crash during a run re-sends its notifications
// (at least once); a failure, a shutdown or a lost partition saves what
// the run delivered before it.
const (
	runMax = 32
	runFor = 50 * time.Millisecond
)

// run sends evs and, for an active subscription, the next undelivered
// events already read ahead, each notification at most batch events,
// moving ln.st.Delivered past what was sent. done reports that every
// notification went out: the caller then saves the state (succeeded).
// Otherwise the run ended in a failure, which it recorded (failed), or
// was cut short by a shutdown or a lost partition, and it saved what it
// delivered.
func (d *deliverer) run(ctx context.Context, s *Subscription, ln *lane, evs []fhirstore.Event, batch int) (done bool, err error) {
	began := time.Now()
	for sent := 0; ; {
		sendErr := d.sendEvents(ctx, s, evs)
		if ctx.Err() != nil || errors.Is(sendErr, errNotOwner) {
			// shutting down, or the partition moved: not a failure of the
			// receiver; what the run delivered is saved for whoever goes on
			if sent > 0 {
				return false, d.save(context.WithoutCancel(ctx), s.ID, ln)
			}
			return false, nil
		}
		if sendErr != nil {
			return false, d.failed(ctx, s, ln, sendErr, false)
		}
		last := evs[len(evs)-1].Number
		ln.st.Delivered = last
		ln.delivered(last)
		ln.take()
		sent++
		if s.Status != StatusActive || sent >= runMax || time.Since(began) >= runFor || len(ln.ahead) == 0 {
			return true, nil
		}
		// A client update or delete ends the run: the next attempt reads
		// the subscription as it is now.
		if cur, ok := d.reg.get(s.ID); !ok || cur.VersionID != s.VersionID {
			return true, nil
		}
		evs = ln.ahead[:min(batch, len(ln.ahead))]
		d.lag.attempt(s.ID, ln.st.Delivered, evs)
	}
}

// sendEvents sends one notification of evs: for a classic subscription
// its one event, else a Bundle of all of them.
func (d *deliverer) sendEvents(ctx context.Context, s *Subscription, evs []fhirstore.Event) error {
	if s.Classic() {
		return d.sendClassic(ctx, s, evs[0])
	}
	b, err := d.notes.Notification(ctx, s, Notice{Kind: KindEvent, Status: s.Status, Count: evs[len(evs)-1].Number, Events: evs})
	if err != nil {
		return err
	}
	return d.sendBundle(ctx, s, b)
}

// eventCount returns the subscription's current event count, which the
// lane does not keep (the matcher moves it).
func (d *deliverer) eventCount(ctx context.Context, id string) (int64, error) {
	st, err := d.buf.state(ctx, id)
	return st.EventCount, err
}

// handshake sends the handshake of a requested subscription: active on
// success. A failed handshake is retried with the subscription's backoff
// like any delivery (the status stays requested and every handshake says
// requested); the subscription goes to error only when MaxFailures
// consecutive attempts have failed. The events recorded meanwhile wait in
// the event log and go out, with status active, once it succeeded. fresh
// says the lane's state was read by this attempt (its event count is
// current).
func (d *deliverer) handshake(ctx context.Context, s *Subscription, ln *lane, fresh bool) error {
	count := ln.st.EventCount
	if ln.synced {
		ln.take()
	}
	if ln.synced { // it knows every event
		count = ln.last()
	} else if !fresh { // the lane's count may be old
		var err error
		if count, err = d.eventCount(ctx, s.ID); err != nil {
			return err
		}
	}
	b, err := d.notes.Notification(ctx, s, Notice{Kind: KindHandshake, Status: StatusRequested, Count: count})
	if err != nil {
		return err
	}
	sendErr := d.sendBundle(ctx, s, b)
	if ctx.Err() != nil || errors.Is(sendErr, errNotOwner) {
		return nil
	}
	if sendErr != nil {
		return d.failed(ctx, s, ln, sendErr, true)
	}
	if err := d.succeeded(ctx, s, ln); err != nil {
		return err
	}
	d.queue.Push(s.ID) // deliver the events that waited for the handshake
	return nil
}

// heartbeat sends a heartbeat with the current status and count.
func (d *deliverer) heartbeat(ctx context.Context, s *Subscription, ln *lane) error {
	count, err := d.eventCount(ctx, s.ID)
	if err != nil {
		return err
	}
	b, err := d.notes.Notification(ctx, s, Notice{Kind: KindHeartbeat, Status: s.Status, Count: count, Error: s.Error})
	if err != nil {
		return err
	}
	sendErr := d.sendBundle(ctx, s, b)
	if ctx.Err() != nil || errors.Is(sendErr, errNotOwner) {
		return nil
	}
	if sendErr != nil {
		return d.failed(ctx, s, ln, sendErr, false)
	}
	return d.succeeded(ctx, s, ln)
}

// save stores the lane's delivery state at once; on failure the lane is
// dropped so that the next delivery starts again from the stored state.
func (d *deliverer) save(ctx context.Context, id string, ln *lane) error {
	if err := d.buf.now(ctx, ln.st); err != nil {
		d.lanes.drop(id)
		return fmt.Errorf("save delivery state: %w", err)
	}
	return nil
}

// succeeded records a successful request and re-activates the
// subscription if it was requested or in error.
func (d *deliverer) succeeded(ctx context.Context, s *Subscription, ln *lane) error {
	now := d.cfg.Now()
	ln.st.ConsecutiveFailures, ln.st.LastError = 0, ""
	ln.st.LastAttempt, ln.st.LastSuccess, ln.st.NextAttempt = now, now, time.Time{}
	d.buf.later(ln.st) // saved behind (savebuffer.go); the lane has it now
	d.sched.SetNext(s.ID, time.Time{})
	d.sched.Touch(s.ID, now)
	d.lag.failing(s.ID, false)
	if s.Status != StatusActive {
		if _, err := d.setStatus(ctx, s, StatusActive, ""); err != nil {
			return err
		}
	}
	return nil
}

// failed records a failed request, schedules the retry with backoff and
// moves the subscription to error after MaxFailures consecutive failures,
// or at once for a permanent failure of an event notification or
// heartbeat. A handshake is never failed at once: a receiver may refuse
// the attempt that races the client's reading of the 201 (Inferno's does),
// so the handshake gets MaxFailures attempts with the ordinary backoff.
func (d *deliverer) failed(ctx context.Context, s *Subscription, ln *lane, cause error, handshake bool) error {
	now := d.cfg.Now()
	st := &ln.st
	st.ConsecutiveFailures++
	st.LastError = cause.Error()
	st.LastAttempt = now
	delay := delivery.Backoff(st.ConsecutiveFailures, d.cfg.RetryBase, d.cfg.RetryMax)
	var permanent bool
	var after time.Duration
	var hint RetryHint
	if errors.As(cause, &hint) {
		permanent, after = hint.RetryHint()
	}
	perm := permanent && !handshake
	switch {
	case perm:
		delay = d.cfg.RetryMax
	case after > delay:
		delay = min(after, d.cfg.RetryMax)
	}
	st.NextAttempt = now.Add(delay)
	if err := d.save(ctx, s.ID, ln); err != nil {
		return err
	}
	d.sched.SetNext(s.ID, st.NextAttempt)
	d.lag.failing(s.ID, true)
	d.log.Warn("rest-hook delivery failed", "subscription", s.ID, "failures", st.ConsecutiveFailures,
		"retry_in", delay, "err", cause)
	if s.Status != StatusError && (perm || st.ConsecutiveFailures >= d.cfg.MaxFailures) {
		msg := fmt.Sprintf("delivery to %s failed %d time(s): %s", s.Endpoint, st.ConsecutiveFailures, publicReason(cause))
		if handshake {
			msg = fmt.Sprintf("handshake to %s failed %d time(s): %s", s.Endpoint, st.ConsecutiveFailures, publicReason(cause))
		}
		if _, err := d.setStatus(ctx, s, StatusError, msg); err != nil {
			return err
		}
	}
	return nil
}

// sendBundle POSTs a notification Bundle with the subscription's MIME type
// and headers.
func (d *deliverer) sendBundle(ctx context.Context, s *Subscription, bundle *Bundle) error {
	body, err := EncodeBundle(bundle)
	if err != nil {
		return err
	}
	return d.send(ctx, s, Request{Method: http.MethodPost, URL: s.Endpoint, ContentType: s.Payload, Body: body})
}

// sendClassic delivers one event of a classic subscription: an empty POST
// to the endpoint without payload, or a PUT of the resource version to
// {endpoint}/{Type}/{id} with one.
func (d *deliverer) sendClassic(ctx context.Context, s *Subscription, ev fhirstore.Event) error {
	if s.Payload == "" {
		return d.send(ctx, s, Request{Method: http.MethodPost, URL: s.Endpoint})
	}
	res, err := d.store.VRead(ctx, ev.Type, ev.ID, ev.VersionID)
	if err != nil {
		return fmt.Errorf("read %s/%s/_history/%s: %w", ev.Type, ev.ID, ev.VersionID, err)
	}
	if res.Deleted {
		return nil // classic subscriptions are not notified of deletes
	}
	url := strings.TrimRight(s.Endpoint, "/") + "/" + ev.Type + "/" + ev.ID
	body := res.Body
	if ev.Type == "Subscription" { // its secrets are write-only
		body = redactJSON(body, Redact)
	}
	return d.send(ctx, s, Request{Method: http.MethodPut, URL: url, ContentType: s.Payload, Body: body})
}

// errNotOwner is the outcome of a send skipped because this node lost the
// subscription's partition after the delivery started: the next holder
// delivers from the stored state.
var errNotOwner = errors.New("partition no longer held")

func (d *deliverer) send(ctx context.Context, s *Subscription, req Request) error {
	if !d.owns(s.ID) { // the lease may have lapsed while the Bundle was built
		return errNotOwner
	}
	if d.sender == nil {
		return noSender{}
	}
	req.Headers = s.Headers
	req.Timeout = min(cmpOr(s.Timeout, d.cfg.Timeout), d.cfg.MaxTimeout)
	if s.Secret != "" {
		req.Secret = []byte(s.Secret)
	}
	began := time.Now()
	err := d.sender.Send(ctx, req)
	d.queue.Observe(s.dest, time.Since(began)) // req.URL is on s.Endpoint's host
	return err
}

// setStatus writes a new status (and error message) to the Subscription
// resource, creating a version, and returns the subscription as stored. If
// the resource changed meanwhile (a client update), nothing is written
// and the newer version is taken instead (nil returned with no error when
// it is gone).
func (d *deliverer) setStatus(ctx context.Context, s *Subscription, status Status, msg string) (*Subscription, error) {
	// the body of s's version: kept by the write hook (requested versions
	// only), or read back
	var body map[string]any
	if s.Status == StatusRequested {
		body = d.bodies.take(s.ID, s.VersionID, d.cfg.Now())
	}
	if body == nil {
		res, err := d.store.Read(ctx, "Subscription", s.ID)
		if errors.Is(err, fhirstore.ErrNotFound) || errors.Is(err, fhirstore.ErrGone) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read Subscription/%s: %w", s.ID, err)
		}
		if body, err = fhirstore.Decode(res.Body); err != nil {
			return nil, fmt.Errorf("decode Subscription/%s: %w", s.ID, err)
		}
		if res.VersionID != s.VersionID {
			return d.adopt(res, body)
		}
	}
	body["status"] = string(status)
	if msg != "" {
		body["error"] = msg
	} else {
		delete(body, "error")
	}
	nres, _, err := d.store.Update(ctx, s.ID, body, fhirstore.WriteOptions{IfMatch: s.VersionID})
	if errors.Is(err, fhirstore.ErrVersionConflict) {
		d.queue.Push(s.ID) // changed meanwhile: the next attempt reads it
		return nil, nil
	}
	if errors.Is(err, fhirstore.ErrNotFound) || errors.Is(err, fhirstore.ErrGone) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("update status of Subscription/%s: %w", s.ID, err)
	}
	d.log.Info("subscription status", "subscription", s.ID, "status", status, "error", msg)
	ns, ok := restamp(s, nres, status, msg, d.topic)
	if ok {
		d.reg.put(ns, 0)
	} else {
		// body is what was stored (the store adds only meta, which
		// parse takes from nres): no need to decode nres.Body again
		var err error
		if ns, err = d.adopt(nres, body); err != nil {
			return nil, err
		}
	}
	d.lanes.renew(s.ID, s.VersionID, ns.VersionID)
	return ns, nil
}

// adopt parses a stored version and makes it the known state.
func (d *deliverer) adopt(res *fhirstore.Resource, body map[string]any) (*Subscription, error) {
	ns, err := d.parse(body, res)
	if err != nil {
		return nil, fmt.Errorf("parse Subscription/%s: %w", res.ID, err)
	}
	d.reg.put(ns, 0)
	return ns, nil
}
