package mongo

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/fhirsub/fhirsub/fhirstore"
)

// These tests check the lease protocol (leases.go) between two DBs on one
// database, as between two nodes: every race is decided by the insert of
// a term document, which FerretDB also makes atomic.

// TestLeaseOneWinner races eight acquirers, on two nodes, for the first
// term of a partition: exactly one gets it.
func TestLeaseOneWinner(t *testing.T) {
	eventBackends(t, func(t *testing.T, open func(t *testing.T) *DB, _ bool) {
		ctx := testCtx(t)
		db := open(t)
		dbs := []*DB{db, secondNode(t, db, Config{})}
		for round := range 5 {
			var (
				wg      sync.WaitGroup
				mu      sync.Mutex
				winners []fhirstore.Lease
			)
			for i := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					l, ok, err := dbs[i%2].AcquireLease(ctx, round, 0, fmt.Sprint("node-", i), 5*time.Second)
					if err != nil {
						t.Error(err)
					}
					if ok {
						mu.Lock()
						winners = append(winners, l)
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			if len(winners) != 1 {
				t.Fatalf("partition %d: %d winners %v, want 1", round, len(winners), winners)
			}
			ls, err := db.Leases(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if got := ls[len(ls)-1]; got.Partition != round || got.Term != 1 || got.Node != winners[0].Node {
				t.Fatalf("Leases() newest of partition %d = %+v, want term 1 of %s", round, got, winners[0].Node)
			}
		}
	})
}

// TestLeaseTakeover walks a partition through renewal, takeover by a
// second node, a stale acquirer and release.
func TestLeaseTakeover(t *testing.T) {
	eventBackends(t, func(t *testing.T, open func(t *testing.T) *DB, _ bool) {
		ctx := testCtx(t)
		a := open(t)
		b := secondNode(t, a, Config{})
		la, ok, err := a.AcquireLease(ctx, 7, 0, "a", time.Second)
		if err != nil || !ok {
			t.Fatalf("a acquires term 1: ok=%v err=%v", ok, err)
		}
		renewed, ok, err := a.RenewLease(ctx, la, 3*time.Second)
		if err != nil || !ok || !renewed.Expires.After(la.Expires) {
			t.Fatalf("a renews: %+v ok=%v err=%v (was %+v)", renewed, ok, err, la)
		}
		// b saw term 1 expired (say): it takes term 2 and deletes term 1.
		lb, ok, err := b.AcquireLease(ctx, 7, 1, "b", 3*time.Second)
		if err != nil || !ok || lb.Term != 2 {
			t.Fatalf("b acquires term 2: %+v ok=%v err=%v", lb, ok, err)
		}
		if _, ok, err := a.RenewLease(ctx, renewed, 3*time.Second); err != nil || ok {
			t.Fatalf("a renews a superseded term: ok=%v err=%v, want not ok", ok, err)
		}
		// Stale acquirers: one for term 2 loses on the _id, one for term 1
		// (deleted) inserts it, sees term 2 and withdraws.
		if _, ok, err := a.AcquireLease(ctx, 7, 1, "a", time.Second); err != nil || ok {
			t.Fatalf("stale acquire of term 2: ok=%v err=%v, want not ok", ok, err)
		}
		if _, ok, err := a.AcquireLease(ctx, 7, 0, "a", time.Second); err != nil || ok {
			t.Fatalf("stale acquire of term 1: ok=%v err=%v, want not ok", ok, err)
		}
		ls, err := a.Leases(ctx)
		if err != nil || len(ls) != 1 || ls[0].Term != 2 || ls[0].Node != "b" {
			t.Fatalf("Leases() = %+v, %v; want term 2 of b only", ls, err)
		}
		if err := b.ReleaseLease(ctx, lb); err != nil {
			t.Fatal(err)
		}
		if ls, err := a.Leases(ctx); err != nil || len(ls) != 1 || ls[0].Expires.After(time.Now()) {
			t.Fatalf("after release Leases() = %+v, %v; want term 2 expired", ls, err)
		}
		if _, ok, err := a.AcquireLease(ctx, 7, 2, "a", time.Second); err != nil || !ok {
			t.Fatalf("a acquires the released partition: ok=%v err=%v", ok, err)
		}
	})
}

// TestHeartbeatCountsLiveNodes counts the nodes whose heartbeat has not
// expired.
func TestHeartbeatCountsLiveNodes(t *testing.T) {
	eventBackends(t, func(t *testing.T, open func(t *testing.T) *DB, _ bool) {
		ctx := testCtx(t)
		a := open(t)
		b := secondNode(t, a, Config{})
		if n, err := a.Heartbeat(ctx, "a", 5*time.Second); err != nil || n != 1 {
			t.Fatalf("a alone: %d live, %v", n, err)
		}
		if n, err := b.Heartbeat(ctx, "b", 5*time.Second); err != nil || n != 2 {
			t.Fatalf("a and b: %d live, %v", n, err)
		}
		if n, err := b.Heartbeat(ctx, "short", time.Millisecond); err != nil || n < 2 {
			t.Fatalf("with a short-lived node: %d live, %v", n, err)
		}
		time.Sleep(5 * time.Millisecond)
		if n, err := a.Heartbeat(ctx, "a", 5*time.Second); err != nil || n != 2 {
			t.Fatalf("after the short-lived node expired: %d live, %v; want 2", n, err)
		}
	})
}
