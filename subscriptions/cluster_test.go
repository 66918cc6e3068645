package subscriptions_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/fhirsub/fhirsub/fhirstore"
	"github.com/fhirsub/fhirsub/subscriptions"
)

// memLeases is an in-memory subscriptions.Leases shared by the Manager
// under test and a simulated other node, which the test drives by hand.
type memLeases struct {
	mu     sync.Mutex
	terms  map[int]fhirstore.Lease // the newest term of each partition
	beats  map[string]time.Time
	rounds map[string]int // heartbeats per node: one per lease round
	events []string       // "acquire p node", "release p node"
}

func newMemLeases() *memLeases {
	return &memLeases{terms: map[int]fhirstore.Lease{}, beats: map[string]time.Time{}, rounds: map[string]int{}}
}

func (l *memLeases) Heartbeat(_ context.Context, node string, ttl time.Duration) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	l.beats[node] = now.Add(ttl)
	l.rounds[node]++
	n := 0
	for _, exp := range l.beats {
		if exp.After(now) {
			n++
		}
	}
	return n, nil
}

func (l *memLeases) Leases(context.Context) ([]fhirstore.Lease, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []fhirstore.Lease
	for _, t := range l.terms {
		out = append(out, t)
	}
	return out, nil
}

func (l *memLeases) AcquireLease(_ context.Context, p int, after int64, node string, ttl time.Duration) (fhirstore.Lease, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.terms[p].Term != after {
		return fhirstore.Lease{}, false, nil
	}
	nl := fhirstore.Lease{Partition: p, Term: after + 1, Node: node, Expires: time.Now().Add(ttl)}
	l.terms[p] = nl
	l.events = append(l.events, "acquire "+node)
	return nl, true, nil
}

func (l *memLeases) RenewLease(_ context.Context, cur fhirstore.Lease, ttl time.Duration) (fhirstore.Lease, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if t := l.terms[cur.Partition]; t.Term != cur.Term || t.Node != cur.Node {
		return fhirstore.Lease{}, false, nil
	}
	cur.Expires = time.Now().Add(ttl)
	l.terms[cur.Partition] = cur
	return cur, true, nil
}

func (l *memLeases) ReleaseLease(_ context.Context, cur fhirstore.Lease) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if t := l.terms[cur.Partition]; t.Term == cur.Term && t.Node == cur.Node {
		t.Expires = time.Time{}
		l.terms[cur.Partition] = t
		l.events = append(l.events, "release "+cur.Node)
	}
	return nil
}

// hold makes node the holder of every partition (a new term) for d, and
// alive for d (the other node; d < 0: dead).
func (l *memLeases) hold(node string, partitions int, d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for p := range partitions {
		t := l.terms[p]
		l.terms[p] = fhirstore.Lease{Partition: p, Term: t.Term + 1, Node: node, Expires: time.Now().Add(d)}
	}
	l.beats[node] = time.Now().Add(d)
}

func (l *memLeases) holders() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, t := range l.terms {
		if t.Expires.After(time.Now()) {
			out = append(out, t.Node)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// TestPartitionOwnerDelivers runs a Manager whose partitions are all held
// by another (live) node at first: its subscription is neither hand-shaken nor
// delivered. When the other node dies (its leases expire), the Manager takes every
// partition and delivers from the stored state: handshake, then the event
// written while it did not own it. Shutdown releases the leases.
func TestPartitionOwnerDelivers(t *testing.T) {
	const parts = 4
	leases := newMemLeases()
	leases.hold("other", parts, time.Hour)
	rcv := newReceiver(t)
	e := newEnv(t, func(c *subscriptions.Config) {
		c.Cluster = subscriptions.Cluster{Leases: leases, NodeID: "me", Partitions: parts, LeaseTTL: 200 * time.Millisecond}
	})
	sub := topicSub(rcv.srv.URL, resultTopic, "id-only", "Observation?patient=Patient/p1")
	id := e.mustDo(201, "POST", "/Subscription", sub)["id"].(string)
	e.mustDo(201, "POST", "/Observation", observation("p1", "final"))

	// Absence, shown by what the node did instead of by a pause: it
	// recorded the event, its queue went idle (the deliverer looked at the
	// subscription and left it), and it ran two more lease rounds without
	// gaining a partition.
	rounds := func() int {
		leases.mu.Lock()
		defer leases.mu.Unlock()
		return leases.rounds["me"]
	}
	r0 := rounds()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := e.m.Stats()
		if st.EventsRecorded >= 1 && st.QueuePending == 0 && st.QueueBusy == 0 && rounds() >= r0+2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the node did not record the event, idle and run two lease rounds in 30 s: %+v, rounds %d", st, rounds())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := len(rcv.matching(func(received) bool { return true })); n != 0 {
		t.Fatalf("%d requests sent while another node held every partition", n)
	}
	if got := e.m.Partitions(); len(got) != 0 {
		t.Fatalf("Partitions() = %v while another node holds them", got)
	}
	if st := e.mustDo(200, "GET", "/Subscription/"+id, nil)["status"]; st != "requested" {
		t.Fatalf("status %v before takeover, want requested", st)
	}
	leases.hold("other", parts, -time.Millisecond) // the other node dies

	rcv.waitFor("handshake after takeover", forSub(t, id, "handshake"))
	ev := rcv.waitFor("event after takeover", forSub(t, id, "event-notification"))
	if nums := eventNumbers(t, ev.JSON); !slices.Equal(nums, []string{"1"}) {
		t.Errorf("event numbers %v, want [1]", nums)
	}
	if got := e.m.Partitions(); len(got) != parts {
		t.Errorf("Partitions() = %v after takeover, want all %d", got, parts)
	}
	if h := leases.holders(); !slices.Equal(h, []string{"me"}) {
		t.Errorf("holders %v, want [me]", h)
	}
	e.stop()
	if h := leases.holders(); len(h) != 0 {
		t.Errorf("holders %v after shutdown, want none (released)", h)
	}
}

// TestPartitionIsStable checks the partition function: stable, in range,
// and spreading ids over the partitions.
func TestPartitionIsStable(t *testing.T) {
	seen := map[int]int{}
	for range 1000 {
		id := fhirstore.NewID()
		p := subscriptions.Partition(id, 16)
		if p < 0 || p >= 16 || p != subscriptions.Partition(id, 16) {
			t.Fatalf("Partition(%q) = %d, not stable or out of range", id, p)
		}
		seen[p]++
	}
	for p := range 16 {
		if seen[p] < 20 {
			t.Errorf("partition %d got %d of 1000 ids", p, seen[p])
		}
	}
}
