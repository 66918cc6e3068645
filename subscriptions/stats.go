package subscriptions

import "sync/atomic"

// Stats is a snapshot of the pipeline of one Manager, for monitoring
// (cmd/fhirsub exposes it as Prometheus metrics). The counters are totals
// since the Manager was created; they start from zero in every process
// and never go down. The other fields are current values.
type Stats struct {
	// ChangesProcessed is the number of changes of the feed the matcher
	// has processed: matched against the subscriptions and recorded
	// together with its cursor.
	ChangesProcessed int64
	// EventsRecorded is the number of subscription events those changes
	// produced, every channel. Recording is idempotent: a change this
	// matcher processes again (after a restart) or that another node's
	// matcher recorded first yields the events already recorded, and they
	// count here too.
	EventsRecorded int64
	// EventsToListeners is the number of events handed to the listeners
	// of non-rest-hook subscriptions (the bound websockets), counted once
	// per listener: an event reaching two sockets counts twice.
	EventsToListeners int64
	// Subscriptions counts the known subscriptions by status; every
	// status of the R4 value set is present, with 0 when none has it. With
	// several nodes every node knows every subscription, so each reports
	// the same counts.
	Subscriptions map[Status]int
	// QueuePending is the number of subscriptions waiting for a delivery
	// worker (each is queued at most once, however many events it has).
	QueuePending int
	// QueueBusy is the number of subscriptions a delivery worker is on.
	QueueBusy int
	// ChangesSkipped counts the changes this process set aside after
	// repeated failures (a set-aside change that still fails when retried
	// at start counts again).
	ChangesSkipped int64
	// Skipped lists the changes currently set aside, by seq.
	Skipped []SkippedChange
	// DeliveryLanes is the number of rest-hook subscriptions holding a
	// delivery lane in memory (their state and the events read ahead):
	// those that have had events to send. One never sent an event holds
	// none.
	DeliveryLanes int
	// Lag is how far notifications are behind the writes (see Manager.Lag).
	Lag Lag
}

// Statuses lists the four R4 subscription statuses, in the order of the
// status machine; it is the key set of Stats.Subscriptions.
func Statuses() []Status {
	return []Status{StatusRequested, StatusActive, StatusError, StatusOff}
}

// counters are the Manager's running totals, updated without locks by
// the matcher goroutine and read by Stats.
type counters struct {
	changes  atomic.Int64
	events   atomic.Int64
	listened atomic.Int64

	skippedChanges atomic.Int64
}

// recorded counts one processed change that produced n events.
func (c *counters) recorded(n int) { c.recordedMany(1, n) }

// recordedMany counts n changes processed together, with events events
// recorded for them in all.
func (c *counters) recordedMany(n, events int) {
	c.changes.Add(int64(n))
	c.events.Add(int64(events))
}

// handed counts events handed to listeners (events × listeners).
func (c *counters) handed(n int) { c.listened.Add(int64(n)) }

// Stats returns the current snapshot. It is safe to call concurrently
// with everything else; the counts by status cost one pass over the known
// subscriptions under the read lock.
func (m *Manager) Stats() Stats {
	st := Stats{
		ChangesProcessed:  m.stats.changes.Load(),
		EventsRecorded:    m.stats.events.Load(),
		EventsToListeners: m.stats.listened.Load(),
		ChangesSkipped:    m.stats.skippedChanges.Load(),
		Skipped:           m.skipped.list(),
		Subscriptions:     make(map[Status]int, 4),
		Lag:               m.Lag(),
	}
	for _, s := range Statuses() {
		st.Subscriptions[s] = 0
	}
	m.reg.countByStatus(st.Subscriptions)
	st.QueuePending, st.QueueBusy = m.queue.Depth()
	st.DeliveryLanes = m.dl.lanes.count()
	return st
}
