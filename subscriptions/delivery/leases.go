package delivery

import (
	"context"
	"hash/fnv"
	"log/slog"
	"sync"
	"time"

	"github.com/fhirsub/fhirsub/fhirstore"
)

// LeaseStore decides, atomically, which node holds which partition
// (fhirstore/mongo implements it with unique _id inserts).
type LeaseStore interface {
	// Heartbeat records that node is alive for ttl and returns the number
	// of live nodes, this one included.
	Heartbeat(ctx context.Context, node string, ttl time.Duration) (int, error)
	// Leases returns the newest term of every partition that has one.
	Leases(ctx context.Context) ([]fhirstore.Lease, error)
	// AcquireLease makes node the holder of term after+1 of partition for
	// ttl; ok is false when another node got that term, or a newer one
	// exists.
	AcquireLease(ctx context.Context, partition int, after int64, node string, ttl time.Duration) (fhirstore.Lease, bool, error)
	// RenewLease extends a held lease by ttl; ok is false when it was
	// superseded by a newer term.
	RenewLease(ctx context.Context, l fhirstore.Lease, ttl time.Duration) (fhirstore.Lease, bool, error)
	// ReleaseLease ends a held lease at once.
	ReleaseLease(ctx context.Context, l fhirstore.Lease) error
}

// Owner is told which partitions this node delivers.
type Owner interface {
	// Gained: start delivering partition p (from the stored delivery
	// state: whatever was cached may date from an earlier ownership).
	Gained(p int)
	// Lost: stop delivering partition p; an attempt in flight may finish.
	Lost(p int)
	// Busy reports whether a delivery of partition p is in flight.
	Busy(p int) bool
}

// LeaseConfig configures a Keeper.
type LeaseConfig struct {
	Store      LeaseStore
	NodeID     string        // unique among the live nodes
	Partitions int           // the same on every node of a store
	TTL        time.Duration // how long a lease lasts without renewal
	Logger     *slog.Logger
}

// PartitionOf returns the partition (0 ≤ p < n) of a subscription id: a
// stable hash (FNV-1a) of the id, modulo n.
func PartitionOf(id string, n int) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(id))
	return int(h.Sum32() % uint32(max(n, 1)))
}

// Keeper keeps this node's fair share of the partitions: every TTL/4 it
// renews the leases it holds, beats its heartbeat, gives up leases beyond
// its share (after their deliveries in flight ended) and takes free or
// expired ones up to it. A lease counts as held until TTL/4 before it
// expires as far as this node knows, so node clocks must agree to well
// within TTL/4.
type Keeper struct {
	cfg   LeaseConfig
	owner Owner
	log   *slog.Logger

	mu   sync.RWMutex
	held map[int]heldLease
	wg   sync.WaitGroup // hand-backs waiting for their partition to drain
}

type heldLease struct {
	lease fhirstore.Lease
	until time.Time // local instant after which it no longer counts as held
}

// NewKeeper returns a Keeper telling owner what it gains and loses.
func NewKeeper(cfg LeaseConfig, owner Owner) *Keeper {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Keeper{cfg: cfg, owner: owner, log: cfg.Logger, held: map[int]heldLease{}}
}

// Holds reports whether this node delivers partition p now.
func (k *Keeper) Holds(p int) bool {
	k.mu.RLock()
	defer k.mu.RUnlock()
	h, ok := k.held[p]
	return ok && time.Now().Before(h.until)
}

// Held returns the partitions this node delivers now, in no order.
func (k *Keeper) Held() []int {
	now := time.Now()
	var out []int
	for p, h := range k.snapshot() {
		if now.Before(h.until) {
			out = append(out, p)
		}
	}
	return out
}

func (k *Keeper) margin() time.Duration { return k.cfg.TTL / 4 }

func (k *Keeper) snapshot() map[int]heldLease {
	k.mu.RLock()
	defer k.mu.RUnlock()
	out := make(map[int]heldLease, len(k.held))
	for p, h := range k.held {
		out[p] = h
	}
	return out
}

func (k *Keeper) set(p int, h heldLease) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.held[p] = h
}

// Run keeps the share until ctx ends, then waits for the hand-backs in
// progress. It does not release the leases it holds: call ReleaseAll once
// the deliveries have stopped.
func (k *Keeper) Run(ctx context.Context) {
	defer k.wg.Wait()
	for {
		began := time.Now()
		k.round(ctx)
		t := time.NewTimer(max(k.cfg.TTL/4-time.Since(began), 0))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// round is one pass of Run.
func (k *Keeper) round(ctx context.Context) {
	start := time.Now()
	all, err := k.cfg.Store.Leases(ctx)
	if err != nil {
		k.warn(ctx, "read leases", err)
		return
	}
	newest := map[int]fhirstore.Lease{}
	for _, l := range all {
		newest[l.Partition] = l
	}
	k.renewAll(ctx, newest)
	live, err := k.cfg.Store.Heartbeat(ctx, k.cfg.NodeID, k.cfg.TTL)
	if err != nil {
		k.warn(ctx, "heartbeat", err)
		return
	}
	share := (k.cfg.Partitions + live - 1) / live
	held := k.snapshot()
	switch {
	case len(held) > share:
		k.shed(ctx, held, len(held)-share)
	case len(held) < share:
		k.acquire(ctx, newest, start, share-len(held))
	}
}

// lose stops delivering partition p and reports the lease it held.
func (k *Keeper) lose(p int, why string) (heldLease, bool) {
	k.mu.Lock()
	h, ok := k.held[p]
	delete(k.held, p)
	k.mu.Unlock()
	if !ok {
		return h, false
	}
	k.owner.Lost(p)
	k.log.Info("partition lost", "partition", p, "term", h.lease.Term, "why", why)
	return h, true
}

// renewAll renews every held lease, concurrently (a slow store must not
// make the last ones late). A renewal counts only if it ends before the
// lease's local deadline: then no other node can have seen the lease
// expired before the renewal was stored.
func (k *Keeper) renewAll(ctx context.Context, newest map[int]fhirstore.Lease) {
	var wg sync.WaitGroup
	for p, h := range k.snapshot() {
		if n := newest[p]; n.Term != h.lease.Term || n.Node != k.cfg.NodeID {
			k.lose(p, "superseded")
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			k.renew(ctx, p, h)
		}()
	}
	wg.Wait()
}

func (k *Keeper) renew(ctx context.Context, p int, h heldLease) {
	t0 := time.Now()
	if !t0.Before(h.until) {
		k.lose(p, "not renewed in time")
		return
	}
	nl, ok, err := k.cfg.Store.RenewLease(ctx, h.lease, k.cfg.TTL)
	switch {
	case err != nil:
		k.warn(ctx, "renew lease", err) // still held until h.until
	case !ok:
		k.lose(p, "superseded")
	case !time.Now().Before(h.until):
		k.lose(p, "renewed too late")
		if err := k.cfg.Store.ReleaseLease(ctx, nl); err != nil {
			k.warn(ctx, "release lease", err)
		}
	default:
		k.set(p, heldLease{lease: nl, until: t0.Add(k.cfg.TTL - k.margin())})
	}
}

// shed hands n held partitions back: it stops delivering each, waits for
// its deliveries in flight and releases the lease. Those farthest from
// this node's starting point go first, so that each node keeps a stable
// set.
func (k *Keeper) shed(ctx context.Context, held map[int]heldLease, n int) {
	first := PartitionOf(k.cfg.NodeID, k.cfg.Partitions)
	for i := k.cfg.Partitions - 1; i >= 0 && n > 0; i-- {
		p := (first + i) % k.cfg.Partitions
		if _, ok := held[p]; !ok {
			continue
		}
		h, ok := k.lose(p, "rebalance")
		if !ok {
			continue
		}
		n--
		// The lease is released only once no delivery of the partition is
		// in flight (a worker is busy until its delivered number is
		// saved), so the next holder sends nothing twice. The drain runs
		// apart, so that the other leases are still renewed; if it does
		// not end before the lease would expire, the lease expires.
		k.wg.Add(1)
		go func() {
			defer k.wg.Done()
			if !k.drain(ctx, p, time.Until(h.until)) {
				k.log.Warn("partition handed back by expiry: deliveries still in flight", "partition", p, "term", h.lease.Term)
				return
			}
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), k.margin())
			defer cancel()
			if err := k.cfg.Store.ReleaseLease(rctx, h.lease); err != nil {
				k.warn(ctx, "release lease", err)
			}
		}()
	}
}

// drain waits, at most for limit, until no delivery of partition p is in
// flight, and reports whether it drained.
func (k *Keeper) drain(ctx context.Context, p int, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for k.owner.Busy(p) {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// acquire takes up to n partitions whose newest lease had expired when
// the round started (start is before the leases were read), or that have
// none. Each node starts looking at its own point of the ring, so that
// nodes rarely race for the same term.
func (k *Keeper) acquire(ctx context.Context, newest map[int]fhirstore.Lease, start time.Time, n int) {
	first := PartitionOf(k.cfg.NodeID, k.cfg.Partitions)
	for i := 0; i < k.cfg.Partitions && n > 0 && ctx.Err() == nil; i++ {
		p := (first + i) % k.cfg.Partitions
		k.mu.RLock()
		_, held := k.held[p]
		k.mu.RUnlock()
		if held {
			continue
		}
		cur, exists := newest[p]
		if exists && cur.Expires.After(start) {
			continue
		}
		t0 := time.Now()
		l, ok, err := k.cfg.Store.AcquireLease(ctx, p, cur.Term, k.cfg.NodeID, k.cfg.TTL)
		if err != nil {
			k.warn(ctx, "acquire lease", err)
			return
		}
		if ok {
			k.set(p, heldLease{lease: l, until: t0.Add(k.cfg.TTL - k.margin())})
			k.owner.Gained(p)
			k.log.Info("partition acquired", "partition", p, "term", l.Term)
			n--
		}
	}
}

// ReleaseAll releases every held lease (at shutdown, once the deliveries
// stopped), so that the other nodes take over at once instead of after
// TTL; best effort, bounded by TTL/4.
func (k *Keeper) ReleaseAll() {
	ctx, cancel := context.WithTimeout(context.Background(), k.margin())
	defer cancel()
	for p := range k.snapshot() {
		if h, ok := k.lose(p, "shutdown"); ok {
			if err := k.cfg.Store.ReleaseLease(ctx, h.lease); err != nil {
				k.log.Warn("release lease at shutdown", "partition", p, "err", err)
			}
		}
	}
}

func (k *Keeper) warn(ctx context.Context, what string, err error) {
	if ctx.Err() == nil {
		k.log.Warn("leases: "+what, "err", err)
	}
}
