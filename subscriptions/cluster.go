package subscriptions

import (
	"time"

	"github.com/fhirsub/fhirsub/subscriptions/delivery"
)

// Leases is how several nodes sharing one store partition rest-hook
// delivery between them: the subscriptions are spread over a fixed number
// of partitions, and each partition is delivered by the node that holds
// its newest unexpired lease term. fhirstore/mongo implements it; every
// race must be decided by the store atomically (MongoDB: the insert of a
// term document with a unique _id). delivery.Keeper keeps this node's
// share.
type Leases = delivery.LeaseStore

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
func Partition(id string, n int) int { return delivery.PartitionOf(id, n) }

// owns reports whether this node delivers the subscription now: always
// without Leases, else when it holds the partition's lease and the lease
// is not within its safety margin of expiring.
func (m *Manager) owns(id string) bool {
	return m.keeper == nil || m.keeper.Holds(Partition(id, m.cfg.Cluster.Partitions))
}

// Partitions returns the partitions whose rest-hook subscriptions this
// node delivers now, in no particular order (every one without Leases).
func (m *Manager) Partitions() []int {
	if m.keeper != nil {
		return m.keeper.Held()
	}
	out := make([]int, m.cfg.Cluster.Partitions)
	for p := range out {
		out[p] = p
	}
	return out
}

// partitions is what gaining or losing a partition means for rest-hook
// delivery (the delivery.Owner of the lease keeper).
type partitions struct {
	reg   *registry
	lanes *lanes
	queue *delivery.Queue
	sched *delivery.Schedule
	buf   *stateBuffer
	n     int
}

var _ delivery.Owner = partitions{}

// Gained drops the cached lanes of the partition's subscriptions (they
// may date from an earlier ownership) and queues every one, so that
// delivery resumes from the persisted delivery state.
func (ps partitions) Gained(p int) {
	ids := ps.reg.inPartition(p, ps.n)
	for _, id := range ids {
		ps.lanes.drop(id)
		ps.queue.Push(id)
	}
	ps.sched.Rearm(ids)
}

// Lost drops the partition's lanes: no new attempt starts (deliver
// checks owns); one in flight may still finish (delivery is at least
// once).
func (ps partitions) Lost(p int) {
	for _, id := range ps.reg.inPartition(p, ps.n) {
		ps.lanes.drop(id)
	}
}

// Busy reports whether a delivery of partition p is in flight (until its
// delivery state is stored, the buffered ones included).
func (ps partitions) Busy(p int) bool {
	in := func(id string) bool { return Partition(id, ps.n) == p }
	return ps.queue.BusyWhere(in) || ps.buf.holds(in)
}
