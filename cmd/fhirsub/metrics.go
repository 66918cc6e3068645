package main

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/fhirsub/fhirsub/channels"
	"github.com/fhirsub/fhirsub/fhirstore"
	"github.com/fhirsub/fhirsub/fhirstore/sqlite"
	"github.com/fhirsub/fhirsub/subscriptions"
	"github.com/fhirsub/fhirsub/web"
)

// Metric names and help texts shared by more than one collector.
const (
	metricDeliveries = "fhirsub_deliveries_total"
	helpDeliveries   = "Notification deliveries by channel and outcome (rest-hook: HTTP requests " +
		"including handshakes and heartbeats; websocket: events handed to a bound socket)."
)

// Label values of the deliveries counter.
const (
	outcomeSuccess = "success"
	outcomeFailure = "failure"
)

// pipelineStats is what the metrics read from the subscription manager.
type pipelineStats interface {
	Stats() subscriptions.Stats
}

// socketCounter is what the metrics read from the websocket hub
// (*channels.Hub implements it).
type socketCounter interface {
	Len() int
	// NotificationLag is the age of the oldest notification frame handed
	// to a connection and not yet written to its socket. It is exported
	// as a gauge only: the write gate (lagGate) does not read it, since a
	// slow consumer is cut off by the hub already and one slow socket
	// must not throttle everybody's writes.
	NotificationLag(now time.Time) time.Duration
}

// metrics is the Prometheus registry of one app: its own registry (never
// the global one), with the Go and process collectors, the counters the
// decorators below update, and the collector reading the pipeline's
// state at scrape time.
type metrics struct {
	reg    *prometheus.Registry
	log    *slog.Logger
	writes *prometheus.CounterVec // interaction, type

	sent    [2]prometheus.Counter  // rest-hook deliveries: success, failure
	latency [2]prometheus.Observer // rest-hook request duration: success, failure
}

// newMetrics returns a registry holding the Go and process collectors and
// the write and rest-hook counters; observe adds the pipeline's gauges.
func newMetrics(log *slog.Logger) *metrics {
	m := &metrics{reg: prometheus.NewRegistry(), log: log}
	m.writes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fhirsub_writes_total",
		Help: "Resource writes accepted through the REST API (batches and transactions included), by interaction and resource type.",
	}, []string{"interaction", "type"})
	deliveries := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: metricDeliveries, Help: helpDeliveries,
		ConstLabels: prometheus.Labels{"channel": subscriptions.ChannelRestHook},
	}, []string{"outcome"})
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "fhirsub_resthook_delivery_duration_seconds",
		Help:    "Duration of rest-hook requests (connection, request and response), by outcome.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"outcome"})
	for i, o := range []string{outcomeSuccess, outcomeFailure} {
		m.sent[i] = deliveries.WithLabelValues(o)
		m.latency[i] = latency.WithLabelValues(o)
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.writes, deliveries, latency,
	)
	return m
}

// writerObserver registers the metrics of the embedded store's writer and
// returns the sqlite.Config.Observe that feeds them. Call it once, when
// the embedded store is the one opened.
func (m *metrics) writerObserver() func(sqlite.WriterWork) {
	took := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "fhirsub_store_writer_seconds",
		Help: "Time the embedded store's writer held its write lock, by work: a group commit of resource " +
			"writes (fsync included), of the subscription pipeline's event writes, or a WAL checkpoint it " +
			"waited for and finished. Every write queued meanwhile waited for it.",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
	}, []string{"work"})
	reqs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fhirsub_store_writer_requests_total",
		Help: "Requests in the embedded store's writer's batches, by work (over the histogram's count: requests per commit).",
	}, []string{"work"})
	m.reg.MustRegister(took, reqs)
	type series struct {
		took prometheus.Observer
		reqs prometheus.Counter
	}
	kinds := map[string]series{}
	for _, k := range []string{sqlite.WorkResources, sqlite.WorkEvents, sqlite.WorkCheckpoint} {
		kinds[k] = series{took.WithLabelValues(k), reqs.WithLabelValues(k)}
	}
	return func(w sqlite.WriterWork) {
		s, ok := kinds[w.Kind]
		if !ok {
			return
		}
		s.took.Observe(w.Took.Seconds())
		s.reqs.Add(float64(w.Requests))
	}
}

// observe registers the collector that reads the pipeline's counters,
// queue, subscriptions and sockets at every scrape. Call it once.
func (m *metrics) observe(stats pipelineStats, sockets socketCounter) {
	m.reg.MustRegister(newPipelineCollector(stats, sockets))
}

// handler serves the registry in the Prometheus text format (and
// OpenMetrics when asked); errors of a collector are logged and the rest
// is still served.
func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(m.log.With("component", "metrics").Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
		Registry:      m.reg,
	})
}

// sender wraps the rest-hook sender so that every request is counted by
// outcome and timed.
func (m *metrics) sender(next restHookSender) restHookSender {
	return &timedSender{next: next, sent: m.sent, latency: m.latency}
}

// store wraps the store the REST API writes through so that successful
// writes are counted.
func (m *metrics) store(next web.Store) web.Store {
	return &countingStore{Store: next, writes: m.writes}
}

// restHookSender is what the rest-hook transport offers
// (channels.RestHook implements it).
type restHookSender interface {
	Send(ctx context.Context, req channels.Request) (channels.Response, error)
}

// hookSender adapts a restHookSender to the subscriptions.Sender the
// delivery pipeline declares.
type hookSender struct{ next restHookSender }

// Send implements subscriptions.Sender.
func (h hookSender) Send(ctx context.Context, req subscriptions.Request) error {
	_, err := h.next.Send(ctx, channels.Request(req))
	return err
}

// timedSender is a restHookSender that records the outcome and the
// duration of each request of the sender it wraps.
type timedSender struct {
	next    restHookSender
	sent    [2]prometheus.Counter
	latency [2]prometheus.Observer
}

// Send sends req with the wrapped sender; a nil error counts as success.
func (s *timedSender) Send(ctx context.Context, req channels.Request) (channels.Response, error) {
	start := time.Now()
	resp, err := s.next.Send(ctx, req)
	i := 0
	if err != nil {
		i = 1
	}
	s.latency[i].Observe(time.Since(start).Seconds())
	s.sent[i].Inc()
	return resp, err
}

// countingStore is a web.Store that counts the successful writes of the
// store it wraps; reads pass through the embedded Store.
type countingStore struct {
	web.Store
	writes *prometheus.CounterVec
}

// count records one write of res.
func (s *countingStore) count(in fhirstore.Interaction, res *fhirstore.Resource) {
	if res != nil {
		s.writes.WithLabelValues(string(in), res.Type).Inc()
	}
}

// Create creates through the wrapped store and counts a create.
func (s *countingStore) Create(ctx context.Context, body map[string]any) (*fhirstore.Resource, error) {
	res, err := s.Store.Create(ctx, body)
	if err == nil {
		s.count(fhirstore.InteractionCreate, res)
	}
	return res, err
}

// Update updates through the wrapped store and counts an update, or a
// create when the update created the resource.
func (s *countingStore) Update(ctx context.Context, id string, body map[string]any, opt fhirstore.WriteOptions) (*fhirstore.Resource, bool, error) {
	res, created, err := s.Store.Update(ctx, id, body, opt)
	if err == nil {
		s.count(interactionOf(fhirstore.MethodUpdate, created), res)
	}
	return res, created, err
}

// Delete deletes through the wrapped store and counts a delete.
func (s *countingStore) Delete(ctx context.Context, typ, id string, opt fhirstore.WriteOptions) (*fhirstore.Resource, error) {
	res, err := s.Store.Delete(ctx, typ, id, opt)
	if err == nil {
		s.count(fhirstore.InteractionDelete, res)
	}
	return res, err
}

// Transaction runs ops through the wrapped store and, when it commits,
// counts each of them.
func (s *countingStore) Transaction(ctx context.Context, ops []fhirstore.Op) ([]fhirstore.OpResult, error) {
	results, err := s.Store.Transaction(ctx, ops)
	if err == nil {
		for i, r := range results {
			if i < len(ops) {
				s.count(interactionOf(ops[i].Method, r.Created), r.Resource)
			}
		}
	}
	return results, err
}

// interactionOf is the interaction a write method performed.
func interactionOf(m fhirstore.Method, created bool) fhirstore.Interaction {
	switch {
	case m == fhirstore.MethodCreate || created:
		return fhirstore.InteractionCreate
	case m == fhirstore.MethodDelete:
		return fhirstore.InteractionDelete
	}
	return fhirstore.InteractionUpdate
}

// pipelineCollector reads the subscription pipeline and the websocket hub
// once per scrape: counters that the subscriptions package keeps, and
// gauges of its current state.
type pipelineCollector struct {
	stats   pipelineStats
	sockets socketCounter

	changes, skipped, events, wsDeliveries *prometheus.Desc
	subs, pending, busy, lanes, conns, lag *prometheus.Desc
}

func newPipelineCollector(stats pipelineStats, sockets socketCounter) *pipelineCollector {
	return &pipelineCollector{
		stats: stats, sockets: sockets,
		changes: prometheus.NewDesc("fhirsub_matcher_changes_total",
			"Changes of the feed the matcher has processed (matched and recorded).", nil, nil),
		skipped: prometheus.NewDesc("fhirsub_matcher_skipped_changes_total",
			"Changes the matcher set aside after repeated failures so that the feed goes on (listed on /readyz, retried at start).", nil, nil),
		events: prometheus.NewDesc("fhirsub_events_recorded_total",
			"Subscription events recorded by the matcher, every channel.", nil, nil),
		// channel a constant and outcome a variable label, exactly as in
		// the rest-hook counter: the registry merges the two
		wsDeliveries: prometheus.NewDesc(metricDeliveries, helpDeliveries, []string{"outcome"},
			prometheus.Labels{"channel": subscriptions.ChannelWebsocket}),
		subs: prometheus.NewDesc("fhirsub_subscriptions",
			"Known subscriptions by status.", []string{"status"}, nil),
		pending: prometheus.NewDesc("fhirsub_delivery_queue_depth",
			"Rest-hook subscriptions with delivery work waiting for a worker.", nil, nil),
		busy: prometheus.NewDesc("fhirsub_delivery_in_flight",
			"Rest-hook subscriptions a delivery worker is on.", nil, nil),
		lanes: prometheus.NewDesc("fhirsub_delivery_lanes",
			"Rest-hook subscriptions holding a delivery lane in memory (those that have had events to send).", nil, nil),
		conns: prometheus.NewDesc("fhirsub_websocket_connections",
			"Open websocket connections, every protocol.", nil, nil),
		lag: prometheus.NewDesc("fhirsub_notification_lag_seconds",
			"Age of the oldest committed work not yet handed on, by channel: matcher (the oldest change "+
				"not yet matched; websocket events are handed over as they are matched), rest-hook (the "+
				"oldest undelivered event of a subscription whose delivery is due; receivers in backoff "+
				"after a failure or slower than 2 s do not count) and websocket (the oldest notification frame "+
				"queued on a websocket connection, every protocol, and not yet written to its socket). Writes "+
				"get 503 while matcher or rest-hook is over --max-notification-lag; websocket does not count "+
				"(a slow consumer is disconnected instead).",
			[]string{"channel"}, nil),
	}
}

// Describe sends the descriptors of every metric Collect sends.
func (c *pipelineCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.changes, c.skipped, c.events, c.wsDeliveries, c.subs, c.pending, c.busy, c.lanes, c.conns, c.lag} {
		ch <- d
	}
}

// Collect takes one Stats snapshot and sends its metrics.
func (c *pipelineCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.stats.Stats()
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v int, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labels...)
	}
	counter(c.changes, st.ChangesProcessed)
	counter(c.skipped, st.ChangesSkipped)
	counter(c.events, st.EventsRecorded)
	counter(c.wsDeliveries, st.EventsToListeners, outcomeSuccess)
	for _, s := range subscriptions.Statuses() {
		gauge(c.subs, st.Subscriptions[s], string(s))
	}
	gauge(c.pending, st.QueuePending)
	gauge(c.busy, st.QueueBusy)
	gauge(c.lanes, st.DeliveryLanes)
	gauge(c.conns, c.sockets.Len())
	ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, st.Lag.Matcher.Seconds(), "matcher")
	ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, st.Lag.RestHook.Seconds(), subscriptions.ChannelRestHook)
	ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, c.sockets.NotificationLag(time.Now()).Seconds(),
		subscriptions.ChannelWebsocket)
}
