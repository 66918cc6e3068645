package subscriptions

import (
	"context"
	"hash/fnv"
	"sync"
	"time"

	"github.com/fhirsub/fhirsub/fhirstore"
)

// Leases is how several nodes sharing one store partition rest-hook
// delivery between them: the subscriptions are spread over a fixed number
// of partitions, and each partition is delivered by the node that holds
// its newest unexpired lease term. fhirstore/mongo implements it; every
// race must be decided by the store atomically (MongoDB: the insert of a
// term document with a unique _id).
type Leases interface {
	// Heartbeat records that node is alive for ttl and returns the number
	// of live nodes, this one included.
	Heartbeat(ctx context.Context, node string, ttl time.Duration) (int, error)
	// Leases returns the newest term of every partition that has one.
	Leases(ctx context.Context) ([]fhirstore.Lease, error)
	// AcquireLease makes node the holder of term after+1 of partition for
	// ttl; after is the newest term the caller saw expired (0: none). ok
	// is false when another node got that term, or a newer one exists.
	AcquireLease(ctx context.Context, partition int, after int64, node string, ttl time.Duration) (fhirstore.Lease, bool, error)
	// RenewLease extends a held lease by ttl; ok is false when it was
	// superseded by a newer term.
	RenewLease(ctx context.Context, l fhirstore.Lease, ttl time.Duration) (fhirstore.Lease, bool, error)
	// ReleaseLease ends a held lease at once.
	ReleaseLease(ctx context.Context, l fhirstore.Lease) error
}

// Cluster configures the sharing of rest-hook delivery with the other
// nodes of one store. The zero value (no Leases) means a single node: it
// delivers every subscription.
type Cluster struct {
	// Leases decides which node delivers which partition (nil: this node
	// delivers all of them).
	Leases Leases
	// NodeID names this node in the leases; it must be unique among the
	// live nodes (required with Leases).
	NodeID string
	// Partitions is the number of partitions; every node of a store must
	// use the same (default 16).
	Partitions int
	// LeaseTTL is how long a lease lasts without renewal (default 10 s).
	// A node renews its leases every LeaseTTL/4 and stops delivering a
	// partition LeaseTTL/4 before its lease expires, so node clocks must
	// agree to well within LeaseTTL/4.
	LeaseTTL time.Duration
}

func (c *Cluster) defaults() {
	c.Partitions = cmpOr(c.Partitions, 16)
	c.LeaseTTL = cmpOr(c.LeaseTTL, 10*time.Second)
}

// Partition returns the partition (0 ≤ p < n) of a subscription id: a
// stable hash (FNV-1a) of the id, modulo n.
func Partition(id string, n int) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(id))
	return int(h.Sum32() % uint32(max(n, 1)))
}

// leaseSet is the set of partitions this node holds, each with the local
// instant (a renewal's start + LeaseTTL - margin) after which it no
// longer counts as held even if no renewal said otherwise.
type leaseSet struct {
	mu   sync.RWMutex
	held map[int]heldLease
}

type heldLease struct {
	lease fhirstore.Lease
	until time.Time
}

func newLeaseSet() *leaseSet { return &leaseSet{held: map[int]heldLease{}} }

func (o *leaseSet) get(p int) (heldLease, bool) {
	o.mu.RLock()
	defer o.mu.RUnlock()
	h, ok := o.held[p]
	return h, ok
}

func (o *leaseSet) set(p int, h heldLease) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.held[p] = h
}

// remove forgets partition p and reports whether it was held.
func (o *leaseSet) remove(p int) (heldLease, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	h, ok := o.held[p]
	delete(o.held, p)
	return h, ok
}

func (o *leaseSet) snapshot() map[int]heldLease {
	o.mu.RLock()
	defer o.mu.RUnlock()
	out := make(map[int]heldLease, len(o.held))
	for p, h := range o.held {
		out[p] = h
	}
	return out
}

// owns reports whether this node delivers the subscription now: always
// without Leases, else when it holds the partition's lease and the lease
// is not within its safety margin of expiring.
func (m *Manager) owns(id string) bool {
	c := &m.cfg.Cluster
	if c.Leases == nil {
		return true
	}
	h, ok := m.own.get(Partition(id, c.Partitions))
	return ok && time.Now().Before(h.until)
}

// Partitions returns the partitions whose rest-hook subscriptions this
// node delivers now, in no particular order (every one without Leases).
func (m *Manager) Partitions() []int {
	c := &m.cfg.Cluster
	var out []int
	if c.Leases == nil {
		for p := range c.Partitions {
			out = append(out, p)
		}
		return out
	}
	now := time.Now()
	for p, h := range m.own.snapshot() {
		if now.Before(h.until) {
			out = append(out, p)
		}
	}
	return out
}

// partitionSubs returns the ids of the known subscriptions of partition p.
func (m *Manager) partitionSubs(p int) []string {
	return m.reg.inPartition(p, m.cfg.Cluster.Partitions)
}

// gain starts delivering partition p under lease l: the cached lanes of
// its subscriptions are dropped (they may date from an earlier ownership)
// and every subscription is queued, so that delivery resumes from the
// persisted delivery state.
func (m *Manager) gain(h heldLease) {
	p := h.lease.Partition
	m.own.set(p, h)
	ids := m.partitionSubs(p)
	for _, id := range ids {
		m.lanes.drop(id)
		m.queue.Push(id)
	}
	m.sched.Rearm(ids)
	m.log.Info("partition acquired", "partition", p, "term", h.lease.Term, "subscriptions", len(ids))
}

// lose stops delivering partition p: no new attempt starts (deliver checks
// owns), the lanes are dropped; an attempt in flight may still finish
// (delivery is at least once).
func (m *Manager) lose(p int, why string) (heldLease, bool) {
	h, ok := m.own.remove(p)
	if !ok {
		return h, false
	}
	for _, id := range m.partitionSubs(p) {
		m.lanes.drop(id)
	}
	m.log.Info("partition lost", "partition", p, "term", h.lease.Term, "why", why)
	return h, true
}

// drainPartition waits, at most for limit, until no delivery of partition
// p is in flight (a delivery is in flight until its delivery state is
// saved), so that a partition handed over on purpose is not delivered
// twice. It reports whether the partition drained.
func (m *Manager) drainPartition(ctx context.Context, p int, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for m.queue.BusyWhere(func(id string) bool { return Partition(id, m.cfg.Cluster.Partitions) == p }) {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}
