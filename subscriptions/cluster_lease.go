package subscriptions

import (
	"context"
	"sync"
	"time"

	"github.com/fhirsub/fhirsub/fhirstore"
)

// leaseLoop keeps this node's share of the partitions: every LeaseTTL/4 it
// renews the leases it holds, beats its heartbeat, gives up the leases
// beyond its fair share and takes free or expired ones up to it. When ctx ends it
// waits for the delivery workers to stop, then releases its leases so that
// the other nodes take over at once instead of after LeaseTTL.
func (m *Manager) leaseLoop(ctx context.Context) {
	c := &m.cfg.Cluster
	for {
		began := time.Now()
		m.leaseRound(ctx)
		t := time.NewTimer(max(c.LeaseTTL/4-time.Since(began), 0))
		select {
		case <-ctx.Done():
			t.Stop()
			m.workers.Wait()
			m.releaseAll()
			return
		case <-t.C:
		}
	}
}

// margin is how long before its stored expiry a lease stops counting as
// held by this node.
func (c *Cluster) margin() time.Duration { return c.LeaseTTL / 4 }

// leaseRound is one pass of the lease loop.
func (m *Manager) leaseRound(ctx context.Context) {
	c := &m.cfg.Cluster
	start := time.Now()
	all, err := c.Leases.Leases(ctx)
	if err != nil {
		m.leaseErr(ctx, "read leases", err)
		return
	}
	newest := map[int]fhirstore.Lease{}
	for _, l := range all {
		newest[l.Partition] = l
	}
	m.renewAll(ctx, newest)
	live, err := c.Leases.Heartbeat(ctx, c.NodeID, c.LeaseTTL)
	if err != nil {
		m.leaseErr(ctx, "heartbeat", err)
		return
	}

	share := (c.Partitions + live - 1) / live
	held := m.own.snapshot()
	switch {
	case len(held) > share:
		m.shed(ctx, held, len(held)-share)
	case len(held) < share:
		m.acquire(ctx, newest, start, share-len(held))
	}
}

// renewAll renews every held lease, concurrently (a slow store must not
// make the last ones late). A renewal counts only if it ends before the
// lease's local deadline: then no other node can have seen the lease
// expired before the renewal was stored.
func (m *Manager) renewAll(ctx context.Context, newest map[int]fhirstore.Lease) {
	c := &m.cfg.Cluster
	var wg sync.WaitGroup
	for p, h := range m.own.snapshot() {
		if n := newest[p]; n.Term != h.lease.Term || n.Node != c.NodeID {
			m.lose(p, "superseded")
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.renew(ctx, p, h)
		}()
	}
	wg.Wait()
}

// renew renews the lease h of partition p.
func (m *Manager) renew(ctx context.Context, p int, h heldLease) {
	c := &m.cfg.Cluster
	t0 := time.Now()
	if !t0.Before(h.until) {
		m.lose(p, "not renewed in time")
		return
	}
	nl, ok, err := c.Leases.RenewLease(ctx, h.lease, c.LeaseTTL)
	switch {
	case err != nil:
		m.leaseErr(ctx, "renew lease", err) // still held until h.until
	case !ok:
		m.lose(p, "superseded")
	case !time.Now().Before(h.until):
		m.lose(p, "renewed too late")
		if err := c.Leases.ReleaseLease(ctx, nl); err != nil {
			m.leaseErr(ctx, "release lease", err)
		}
	default:
		m.own.set(p, heldLease{lease: nl, until: t0.Add(c.LeaseTTL - c.margin())})
	}
}

// shed hands n held partitions back: it stops delivering each, waits for
// its deliveries in flight and releases the lease.
func (m *Manager) shed(ctx context.Context, held map[int]heldLease, n int) {
	c := &m.cfg.Cluster
	first := Partition(c.NodeID, c.Partitions)
	// Give back those farthest from this node's starting point, so that
	// each node keeps a stable set.
	for i := c.Partitions - 1; i >= 0 && n > 0; i-- {
		p := (first + i) % c.Partitions
		if _, ok := held[p]; !ok {
			continue
		}
		h, ok := m.lose(p, "rebalance")
		if !ok {
			continue
		}
		n--
		// The lease is released only once no delivery of the partition is
		// in flight: a worker is busy until its delivered number is saved,
		// so the next holder reads it and sends nothing twice. A slow store
		// may take longer than a lease round; the drain runs apart so that
		// the other leases are still renewed. If it does not end before
		// the lease would expire anyway, the lease is left to expire.
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			if !m.drainPartition(ctx, p, time.Until(h.until)) {
				m.log.Warn("partition handed back by expiry: deliveries still in flight", "partition", p, "term", h.lease.Term)
				return
			}
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.margin())
			defer cancel()
			if err := c.Leases.ReleaseLease(rctx, h.lease); err != nil {
				m.leaseErr(ctx, "release lease", err)
			}
		}()
	}
}

// acquire takes up to n partitions whose newest lease had expired when
// the round started (start is before the leases were read), or that have
// none. Each node starts looking at its own point of the ring, so that
// nodes rarely race for the same term.
func (m *Manager) acquire(ctx context.Context, newest map[int]fhirstore.Lease, start time.Time, n int) {
	c := &m.cfg.Cluster
	first := Partition(c.NodeID, c.Partitions)
	for i := 0; i < c.Partitions && n > 0 && ctx.Err() == nil; i++ {
		p := (first + i) % c.Partitions
		if _, held := m.own.get(p); held {
			continue
		}
		cur, exists := newest[p]
		if exists && cur.Expires.After(start) {
			continue
		}
		t0 := time.Now()
		l, ok, err := c.Leases.AcquireLease(ctx, p, cur.Term, c.NodeID, c.LeaseTTL)
		if err != nil {
			m.leaseErr(ctx, "acquire lease", err)
			return
		}
		if ok {
			m.gain(heldLease{lease: l, until: t0.Add(c.LeaseTTL - c.margin())})
			n--
		}
	}
}

// releaseAll releases every held lease at shutdown (best effort, bounded).
func (m *Manager) releaseAll() {
	c := &m.cfg.Cluster
	ctx, cancel := context.WithTimeout(context.Background(), c.margin())
	defer cancel()
	for p := range m.own.snapshot() {
		if h, ok := m.lose(p, "shutdown"); ok {
			if err := c.Leases.ReleaseLease(ctx, h.lease); err != nil {
				m.log.Warn("release lease at shutdown", "partition", p, "err", err)
			}
		}
	}
}

func (m *Manager) leaseErr(ctx context.Context, what string, err error) {
	if ctx.Err() == nil {
		m.log.Warn("leases: "+what, "err", err)
	}
}
