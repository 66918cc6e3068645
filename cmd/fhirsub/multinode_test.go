package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/fhirsub/fhirsub/subscriptions"
)

// multiPlan sizes TestSeveralNodes: FerretDB uses no index, so the
// volumes stay modest.
const (
	multiNodes      = 3
	multiPatients   = 5
	multiSubs       = 20
	multiPhase1     = 30              // writes while every node lives
	multiAfterKill  = 7 * time.Second // writing goes on this long after the kill (past a takeover)
	multiLeaseTTL   = 4 * time.Second // renewals every 1 s: margin for FerretDB under -race on 2 loaded cores
	multiPartitions = 16
	multiDatabase   = "fhirsub_multinode"
)

// TestSeveralNodes runs three server binaries on one FerretDB (production
// uses a MongoDB replica set), creates rest-hook subscriptions and writes
// through all of them, and proves that each event is delivered by one
// node; then it SIGKILLs a node mid-load, restarts it while the writes go
// on, and proves, counting from the writes the client got a 201 for, that
// nothing is lost and that nothing is sent twice but what was in flight at
// the kill (the hand-back to the restarted node included). A legacy
// websocket client on one node sees a write made through another.
func TestSeveralNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test skipped in -short mode")
	}
	began := time.Now()
	uri := startFerretServer(t)
	rcv := newHookReceiver(t)
	nodes := make([]*serverProc, multiNodes)
	for i := range nodes {
		args := []string{"--mongodb-uri", uri, "--mongodb-database", multiDatabase,
			"--node-id", fmt.Sprintf("node-%c", 'a'+i), "--lease-ttl", multiLeaseTTL.String(),
			"--retry-base", "50ms", "--retry-max", "1s", "--log-level", "info"}
		if i > 0 {
			// One public base URL, as behind a load balancer: an event
			// delivered twice by two nodes carries the same references.
			// (node a's own is http://localhost:<port>).
			args = append(args, "--base-url", strings.Replace(nodes[0].base, "127.0.0.1", "localhost", 1))
		}
		nodes[i] = startServerProc(t, args...)
	}
	leases := waitBalanced(t, uri)
	t.Logf("setup: %d nodes up, partitions balanced %v in %v", len(nodes), holdings(leases), time.Since(began).Round(time.Millisecond))

	checkLegacyAcrossNodes(t, nodes[0].base, nodes[1].base)

	patients := make([]string, multiPatients)
	for i := range patients {
		p := mustFHIR(t, http.StatusCreated, "POST", nodes[i%len(nodes)].base+"/Patient",
			map[string]any{"resourceType": "Patient", "name": []any{map[string]any{"family": fmt.Sprintf("Node%02d", i)}}})
		patients[i], _ = p["id"].(string)
	}
	subs := make([]crashSub, multiSubs)
	for i := range subs {
		s := crashSub{patient: patients[i%len(patients)], content: "id-only"}
		res := mustFHIR(t, http.StatusCreated, "POST", nodes[i%len(nodes)].base+"/Subscription",
			topicSubscription(rcv.URL(), criticalTopic, s.content, "Observation?patient=Patient/"+s.patient))
		s.id, _ = res["id"].(string)
		subs[i] = s
	}
	waitAllActive(t, nodes[2].base, len(subs))
	t.Logf("%d subscriptions active after %v", len(subs), time.Since(began).Round(time.Millisecond))

	// Phase 1: every node lives; writes go round-robin through all. The
	// expectation is what the client was told: the writes answered 201.
	var seq atomic.Int64
	ack := &ackedWrites{byID: map[string]string{}}
	write := func(ctx context.Context, base string) {
		n := seq.Add(1)
		patient := patients[int(n)%len(patients)]
		code, body, err := fhirDo(ctx, "POST", base+"/Observation",
			criticalObservation(patient, loincSodium, fmt.Sprintf("m%04d", n)))
		if id, _ := body["id"].(string); err == nil && code == http.StatusCreated && id != "" {
			ack.add(id, patient)
		}
	}
	for i := range multiPhase1 {
		write(context.Background(), nodes[i%len(nodes)].base)
	}
	// Markers: one acknowledged write per patient, last (see drain).
	marks := 0
	writeMarkers := func(base string) {
		for _, p := range patients {
			marks++
			seq.Add(1) // an attempted write like the others
			res := postPolitely(t, base+"/Observation", criticalObservation(p, loincSodium, fmt.Sprintf("mark%04d", marks)))
			id, _ := res["id"].(string)
			ack.add(id, p)
		}
	}
	writeMarkers(nodes[0].base)
	want, _ := expectedEvents(t, nodes[0].base, subs)
	drain(t, rcv, subs, want, 30*time.Second)
	phase1 := tallyAcked(t, rcv, subs, want, ack, nil, time.Time{})
	t.Logf("phase 1 drained after %v: %+v", time.Since(began).Round(time.Millisecond), phase1)

	// Phase 2: writers go on through every live node; the last node is
	// killed while they write, and restarted while they still write, so
	// that it takes its share of the partitions back under load.
	leases = currentLeases(t, uri)
	vi := pickVictim(leases, subs, len(nodes))
	victim := nodes[vi]
	victimID := fmt.Sprintf("node-%c", 'a'+vi)
	var alive atomic.Pointer[[]*serverProc]
	all := append([]*serverProc(nil), nodes...)
	alive.Store(&all)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; ctx.Err() == nil; i++ {
				live := *alive.Load()
				write(ctx, live[i%len(live)].base)
				time.Sleep(100 * time.Millisecond) // what FerretDB absorbs
			}
		}()
	}
	time.Sleep(1500 * time.Millisecond)
	orphans := map[string]bool{} // subscriptions of the victim's partitions
	for _, s := range subs {
		if leases[subscriptions.Partition(s.id, multiPartitions)] == victimID {
			orphans[s.id] = true
		}
	}
	survivors := slices.Delete(slices.Clone(nodes), vi, vi+1)
	alive.Store(&survivors)
	killed := time.Now()
	victim.kill()
	before := map[string]int{} // after the kill: from now on only a new owner delivers
	for id := range orphans {
		before[id] = len(rcv.snapshot(id).deliveries)
	}
	takeover := watchTakeover(rcv, orphans, before, killed, multiAfterKill+5*time.Second)
	time.Sleep(multiAfterKill)
	victim.start()
	alive.Store(&all)
	rejoined := time.Now()
	rebalanced, balanced := balancedWithin(t, uri, 20*time.Second)
	rebalancedAfter := time.Since(rejoined)
	time.Sleep(2 * time.Second) // writing goes on after the hand-back
	cancel()
	wg.Wait()

	// A write cut by the kill between its steps is settled by a reader
	// after the store's commit timeout (5 s): reconcile with the store
	// until the numbering no longer moves.
	time.Sleep(time.Until(killed.Add(6 * time.Second)))
	writeMarkers(nodes[0].base)
	want, written := expectedEvents(t, nodes[0].base, subs)
	for range 3 {
		drain(t, rcv, subs, want, 30*time.Second)
		again, n := expectedEvents(t, nodes[0].base, subs)
		if sameExpectation(want, again) {
			break
		}
		want, written = again, n
	}
	final := tallyAcked(t, rcv, subs, want, ack, orphans, killed)
	took := <-takeover
	line := fmt.Sprintf("multinode: nodes=%d, subscriptions=%d, writes acknowledged=%d of %d attempted (stored %d), events expected from acknowledged writes=%d,"+
		" delivered=%d, lost=%d, duplicates=%d (of which in flight at the SIGKILL=%d, elsewhere=%d), delivered for unacknowledged stored writes=%d,"+
		" takeover=%.1fs, victim restarted and partitions rebalanced %v in %v (phase 1 duplicates=%d, lost=%d; killed node held %d partitions and %d subscriptions, total=%v)",
		len(nodes), len(subs), ack.len(), seq.Load(), written, final.expected, final.delivered, final.lost, final.duplicates,
		final.atKill, final.duplicates-final.atKill, final.unacked, took.Seconds(), holdings(rebalanced), rebalancedAfter.Round(time.Millisecond),
		phase1.duplicates, phase1.lost, countHeld(leases, victimID), len(orphans), time.Since(began).Round(time.Millisecond))
	t.Log(line)
	reportFigure(line)

	for _, p := range final.problems {
		t.Error(p)
	}
	if phase1.duplicates != 0 || phase1.lost != 0 {
		t.Errorf("phase 1 (no node died): %d duplicates, %d lost, want 0", phase1.duplicates, phase1.lost)
	}
	if final.lost > 0 {
		t.Errorf("acknowledged writes lost: %d of %d events: %v", final.lost, final.expected, final.lostWhat)
	}
	// A delivery in flight when its node is SIGKILLed (the receiver
	// answered, the delivered number was not saved yet) is sent again by
	// the next holder: rest-hook is at least once. Every other duplicate —
	// the hand-back when the restarted node rejoins included — is a defect.
	if other := final.duplicates - final.atKill; other > 0 {
		t.Errorf("%d duplicate deliveries not explained by the SIGKILL: %v", other, final.duplicated)
	}
	if bad := rcv.malformed(); len(bad) > 0 {
		t.Errorf("%d malformed or inconsistent notifications, first: %s", len(bad), bad[0])
	}
	if took <= 0 {
		t.Errorf("the killed node's subscriptions were not taken over")
	}
	if !balanced {
		t.Errorf("partitions not balanced over %d nodes within 20s of the restart: %v", multiNodes, holdings(rebalanced))
	}
}

// startFerretServer builds and runs fhirstore/mongo/testdata/ferretserver
// (FerretDB v1, SQLite handler, in memory when /dev/shm exists) on
// 127.0.0.1 and returns its URI. It stops when its stdin closes, at cleanup.
func startFerretServer(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "ferretserver")
	if out, err := exec.Command("go", "build", "-o", bin, "../../fhirstore/mongo/testdata/ferretserver").CombinedOutput(); err != nil {
		t.Fatalf("build ferretserver: %v\n%s", err, out)
	}
	parent := ""
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		parent = "/dev/shm"
	}
	data, err := os.MkdirTemp(parent, "fhirsub-multinode-")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, data)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = stdin.Close()
		_ = cmd.Wait()
		_ = os.RemoveAll(data)
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("read ferretserver URI: %v", err)
	}
	return strings.TrimSpace(line)
}

// currentLeases reads the leases collection: the node holding the newest
// unexpired term of each partition.
func currentLeases(t *testing.T, uri string) map[int]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cl.Disconnect(ctx) }()
	cur, err := cl.Database(multiDatabase).Collection("leases").Find(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	var docs []struct {
		Partition int64  `bson:"partition"`
		Term      int64  `bson:"term"`
		Node      string `bson:"node"`
		Expires   int64  `bson:"expires"`
	}
	if err := cur.All(ctx, &docs); err != nil {
		t.Fatal(err)
	}
	sort.Slice(docs, func(i, j int) bool { return docs[i].Term < docs[j].Term })
	out := map[int]string{}
	now := time.Now().UnixMilli()
	for _, d := range docs {
		delete(out, int(d.Partition))
		if d.Expires > now {
			out[int(d.Partition)] = d.Node
		}
	}
	return out
}

// waitBalanced waits until every partition is held and each node holds
// its fair share at most, twice in a row a lease tick apart.
func waitBalanced(t *testing.T, uri string) map[int]string {
	t.Helper()
	l, ok := balancedWithin(t, uri, 20*time.Second)
	if !ok {
		t.Fatalf("partitions not balanced over %d nodes within 20s: %v", multiNodes, holdings(l))
	}
	return l
}

// balancedWithin is waitBalanced that reports a timeout instead of
// failing (the last leases read and false).
func balancedWithin(t *testing.T, uri string, limit time.Duration) (map[int]string, bool) {
	t.Helper()
	share := (multiPartitions + multiNodes - 1) / multiNodes
	deadline := time.Now().Add(limit)
	stable := 0
	for {
		l := currentLeases(t, uri)
		ok := len(l) == multiPartitions && len(holdings(l)) == multiNodes
		for _, n := range holdings(l) {
			ok = ok && n <= share
		}
		if stable = map[bool]int{true: stable + 1, false: 0}[ok]; stable >= 2 {
			return l, true
		}
		if time.Now().After(deadline) {
			return l, false
		}
		time.Sleep(multiLeaseTTL / 4)
	}
}

func holdings(l map[int]string) map[string]int {
	out := map[string]int{}
	for _, n := range l {
		out[n]++
	}
	return out
}

func countHeld(l map[int]string, node string) int { return holdings(l)[node] }

// pickVictim returns the index of the node whose partitions hold the
// most subscriptions, the last of those that tie: the node killed must
// orphan some, or their takeover cannot be seen. (The last node, always
// chosen before, held none of 20 subscriptions in about 0.3% of runs:
// 0.75^20 with 4 of 16 partitions.)
func pickVictim(leases map[int]string, subs []crashSub, nodes int) int {
	best, most := nodes-1, -1
	for i := nodes - 1; i >= 0; i-- {
		id := fmt.Sprintf("node-%c", 'a'+i)
		n := 0
		for _, s := range subs {
			if leases[subscriptions.Partition(s.id, multiPartitions)] == id {
				n++
			}
		}
		if n > most {
			best, most = i, n
		}
	}
	return best
}
