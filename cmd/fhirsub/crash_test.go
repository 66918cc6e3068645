package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// crashPlan sizes TestCrashSafety: small enough for ~30 s on 2 cores,
// large enough that every kill lands among writes, matches and deliveries.
const (
	crashPatients      = 20
	crashSubscriptions = 100
	crashWrites        = 300
	crashWriters       = 4
	crashKills         = 4 // during the load, plus one right after it
)

// The two lab codes the writes alternate between; every fifth
// subscription filters on the first.
const (
	loincPotassium = "2823-3"
	loincSodium    = "2951-2"
)

// crashSub is one subscription of the test and what it must receive.
type crashSub struct {
	id      string
	patient string
	code    string // "" or the only code it filters on
	content string // id-only or empty
}

// writeResult is one attempted write.
type writeResult struct {
	tag, patient, code string
	id                 string // set when the server answered 2xx
	acked              bool
}

// TestCrashSafety runs the server binary, loads it with writes that
// match 100 rest-hook subscriptions, SIGKILLs it at random moments and
// restarts it on the same data, then proves that every committed write
// produced exactly its events, numbered 1..N per subscription, each
// delivered at least once and served by $events.
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test skipped in -short mode")
	}
	began := time.Now()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))

	rcv := newHookReceiver(t)
	srv := startServerProc(t, "--retry-base", "50ms", "--retry-max", "1s", "--log-level", "warn")

	patients := make([]string, crashPatients)
	for i := range patients {
		p := mustFHIR(t, http.StatusCreated, "POST", srv.base+"/Patient",
			map[string]any{"resourceType": "Patient", "name": []any{map[string]any{"family": fmt.Sprintf("Crash%02d", i)}}})
		patients[i], _ = p["id"].(string)
	}
	subs := make([]crashSub, crashSubscriptions)
	for i := range subs {
		s := crashSub{patient: patients[i%crashPatients], content: "id-only"}
		filters := []string{"Observation?patient=Patient/" + s.patient}
		if i%5 == 4 {
			s.code = loincPotassium
			filters = append(filters, "Observation?code=http://loinc.org|"+loincPotassium)
		}
		if i%10 == 9 {
			s.content = "empty"
		}
		res := mustFHIR(t, http.StatusCreated, "POST", srv.base+"/Subscription",
			topicSubscription(rcv.URL(), criticalTopic, s.content, filters...))
		s.id, _ = res["id"].(string)
		subs[i] = s
	}
	waitAllActive(t, srv.base, len(subs))
	t.Logf("setup: %d patients, %d active subscriptions in %v", len(patients), len(subs), time.Since(began).Round(time.Millisecond))

	// The load: writers POST critical results until crashWrites attempts
	// are made; an attempt whose answer is lost stays "unknown" and is
	// reconciled with the store afterwards.
	var (
		attempts atomic.Int64
		mu       sync.Mutex
		writes   []writeResult
		answers  = map[int]int{} // status → count, non-2xx and errors (0)
	)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for w := range crashWriters {
		wrng := rand.New(rand.NewPCG(seed, uint64(w)+2))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				n := attempts.Add(1)
				if n > crashWrites {
					return
				}
				wr := writeResult{tag: fmt.Sprintf("w%04d", n), patient: patients[wrng.IntN(len(patients))], code: loincSodium}
				if wrng.IntN(2) == 0 {
					wr.code = loincPotassium
				}
				st, res, err := fhirDo(ctx, "POST", srv.base+"/Observation", criticalObservation(wr.patient, wr.code, wr.tag))
				if err == nil && st/100 == 2 {
					wr.id, _ = res["id"].(string)
					wr.acked = wr.id != ""
				}
				mu.Lock()
				writes = append(writes, wr)
				if !wr.acked {
					answers[st]++
				}
				mu.Unlock()
				if !wr.acked {
					waitServing(ctx, srv.base) // the server is (being) killed
				}
			}
		}()
	}

	// The kills, spread over the load at random moments.
	for k := range crashKills {
		at := int64(crashWrites*(k+1)/(crashKills+1) + rng.IntN(crashWrites/(crashKills+1)/2))
		for attempts.Load() < at && ctx.Err() == nil {
			time.Sleep(time.Millisecond)
		}
		time.Sleep(time.Duration(rng.IntN(30)) * time.Millisecond)
		restart(srv, rcv, rng)
	}
	wg.Wait()
	if ctx.Err() != nil {
		t.Fatalf("the load did not finish within 90s: %d attempts", attempts.Load())
	}
	loadDone := time.Now()
	// One more kill while the matcher and the deliverers catch up.
	time.Sleep(time.Duration(rng.IntN(20)) * time.Millisecond)
	restart(srv, rcv, rng)
	kills := crashKills + 1

	// Markers: one more acknowledged write per patient and code after the
	// last kill. Each subscription's last events are markers, and delivery
	// goes in event order, so once every event has arrived nothing earlier
	// can still come: the drain below needs no pause to prove it.
	for i, p := range patients {
		for _, code := range []string{loincSodium, loincPotassium} {
			wr := writeResult{tag: fmt.Sprintf("mark%02d-%s", i, code), patient: p, code: code}
			res := postPolitely(t, srv.base+"/Observation", criticalObservation(p, code, wr.tag))
			wr.id, _ = res["id"].(string)
			wr.acked = wr.id != ""
			writes = append(writes, wr)
		}
	}

	// Reconcile: every committed write is in the store, acknowledged or not.
	stored := map[string]map[string]any{} // tag → Observation
	for _, obs := range searchAll(t, srv.base+"/Observation?_count=1000") {
		tag := ""
		for _, idf := range asSlice(obs["identifier"]) {
			im, _ := idf.(map[string]any)
			if im["system"] == "urn:fhirsub:test-write" {
				tag, _ = im["value"].(string)
			}
		}
		if _, dup := stored[tag]; dup || tag == "" {
			t.Errorf("Observation/%v: tag %q missing or stored twice", obs["id"], tag)
			continue
		}
		stored[tag] = obs
	}
	var acked, lostAnswer, notCommitted int
	matching := map[string][]string{} // subscription id → Observation ids that must notify it
	for _, wr := range writes {
		obs, ok := stored[wr.tag]
		switch {
		case wr.acked && !ok:
			t.Errorf("write %s was acknowledged (Observation/%s) but is not in the store", wr.tag, wr.id)
			continue
		case wr.acked && obs["id"] != wr.id:
			t.Errorf("write %s acknowledged as Observation/%s, stored as %v", wr.tag, wr.id, obs["id"])
		case wr.acked:
			acked++
		case ok:
			lostAnswer++
		default:
			notCommitted++
			continue
		}
		id, _ := obs["id"].(string)
		for _, s := range subs {
			if s.patient == wr.patient && (s.code == "" || s.code == wr.code) {
				matching[s.id] = append(matching[s.id], id)
			}
		}
		delete(stored, wr.tag)
	}
	for tag := range stored {
		t.Errorf("the store holds write %s that was never attempted", tag)
	}
	committed := acked + lostAnswer

	// Drain: every subscription receives events 1..N, N its matching writes.
	expected := 0
	for _, s := range subs {
		expected += len(matching[s.id])
		if len(matching[s.id]) >= 1000 {
			t.Fatalf("Subscription/%s expects %d events, beyond the default retention", s.id, len(matching[s.id]))
		}
	}
	drained := rcv.waitUntil(60*time.Second, func() bool {
		for _, s := range subs {
			if len(rcv.snapshot(s.id).deliveries) < len(matching[s.id]) {
				return false
			}
		}
		return true
	})
	if !drained {
		t.Errorf("deliveries did not drain within 60s of the end of the load")
	}
	drainTook := time.Since(loadDone)

	var delivered, duplicates, lost, sameProcess int
	for _, s := range subs {
		want := matching[s.id]
		got := rcv.snapshot(s.id)
		for num, times := range got.deliveries {
			if num > len(want) {
				t.Errorf("Subscription/%s: event %d delivered, but only %d writes match it", s.id, num, len(want))
				continue
			}
			delivered++
			duplicates += times - 1
			if ep := got.epochs[num]; len(ep) > 1 && hasRepeat(ep) {
				sameProcess++
				if sameProcess <= 5 {
					t.Errorf("Subscription/%s: event %d delivered twice by one server process (epochs %v)", s.id, num, ep)
				}
			}
		}
		for i := 1; i <= len(want); i++ {
			if got.deliveries[i] == 0 {
				lost++
			}
		}
		if !contiguous(got.deliveries, len(want)) {
			t.Errorf("Subscription/%s: event numbers %v, want 1..%d", s.id, sortedKeys(got.deliveries), len(want))
		}
		if s.content == "id-only" {
			checkFoci(t, s.id, got.focus, want)
		}
		checkEventsOperation(t, srv.base, s, want)
	}
	if bad := rcv.malformed(); len(bad) > 0 {
		t.Errorf("%d malformed or inconsistent notifications, first: %s", len(bad), bad[0])
	}
	for _, s := range subs {
		if st, msg := subscriptionStatus(t, srv.base, s.id); st != "active" || msg != "" {
			t.Errorf("Subscription/%s ends %s (error %q), want active", s.id, st, msg)
		}
	}

	line := fmt.Sprintf("crash: changes written=%d, events expected=%d, events delivered=%d, duplicates=%d, lost=%d"+
		" (kills=%d, subscriptions=%d, attempts=%d, acknowledged=%d, committed-answer-lost=%d, not-committed=%d,"+
		" failed answers=%v, drain=%v, total=%v, seed=%d)",
		committed, expected, delivered, duplicates, lost, kills, len(subs), len(writes), acked, lostAnswer,
		notCommitted, answers, drainTook.Round(time.Millisecond), time.Since(began).Round(time.Millisecond), seed)
	t.Log(line)
	reportFigure(line)
	if lost > 0 || delivered != expected {
		t.Errorf("events lost: %d of %d", lost, expected)
	}
}

// waitAllActive waits until n subscriptions are active.
func waitAllActive(t *testing.T, base string, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		active := 0
		for _, s := range searchAll(t, base+"/Subscription?_count=1000") {
			if s["status"] == "active" {
				active++
			}
		}
		if active == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d subscriptions active after 30s", active, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitServing waits until the server answers /metadata again (or ctx ends).
func waitServing(ctx context.Context, base string) {
	for ctx.Err() == nil {
		st, _, err := fhirDo(ctx, "GET", base+"/metadata", nil)
		if err == nil && st == http.StatusOK {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// checkFoci checks that the events of an id-only subscription point at
// exactly the matching Observations, in write-commit order agnostic way:
// as a set, each once.
func checkFoci(t *testing.T, sub string, focus map[int]string, want []string) {
	t.Helper()
	seen := map[string]int{}
	for num, ref := range focus {
		id := ref[strings.LastIndex(ref, "/")+1:]
		if !strings.Contains(ref, "Observation/") {
			t.Errorf("Subscription/%s event %d: focus %q is not an Observation", sub, num, ref)
		}
		seen[id]++
	}
	for _, id := range want {
		if seen[id] != 1 {
			t.Errorf("Subscription/%s: Observation/%s notified %d times, want once", sub, id, seen[id])
		}
		delete(seen, id)
	}
	for id := range seen {
		t.Errorf("Subscription/%s: notified of Observation/%s, which does not match it", sub, id)
	}
}

// checkEventsOperation asks $events and $status for the subscription's
// events: all of them must still be served, numbered 1..N.
func checkEventsOperation(t *testing.T, base string, s crashSub, want []string) {
	t.Helper()
	b := mustFHIR(t, http.StatusOK, "GET", base+"/Subscription/"+s.id+"/$events", nil)
	n, err := parseNotification(b)
	if err != nil {
		t.Errorf("Subscription/%s $events: %v", s.id, err)
		return
	}
	nums := map[int]int{}
	foci := map[int]string{}
	for i, num := range n.Events {
		nums[num]++
		foci[num] = n.Foci[i]
	}
	if !contiguous(nums, len(want)) || len(n.Events) != len(want) {
		t.Errorf("Subscription/%s $events serves %v, want 1..%d once each", s.id, n.Events, len(want))
	}
	if s.content == "id-only" {
		checkFoci(t, s.id, foci, want)
	}
	st := mustFHIR(t, http.StatusOK, "GET", base+"/Subscription/"+s.id+"/$status", nil)
	for _, e := range asSlice(st["entry"]) {
		em, _ := e.(map[string]any)
		p, _ := em["resource"].(map[string]any)
		for _, pp := range asSlice(p["parameter"]) {
			pm, _ := pp.(map[string]any)
			if pm["name"] == "events-since-subscription-start" && pm["valueString"] != fmt.Sprint(len(want)) {
				t.Errorf("Subscription/%s $status: events-since-subscription-start %v, want %d", s.id, pm["valueString"], len(want))
			}
		}
	}
}

// restart SIGKILLs the server, opens a new receiver epoch (deliveries on
// connections accepted from now on come from the next process), waits a
// random moment and starts the server again on the same data and port.
func restart(srv *serverProc, rcv *hookReceiver, rng *rand.Rand) {
	srv.kill()
	rcv.nextEpoch()
	time.Sleep(time.Duration(rng.IntN(200)) * time.Millisecond)
	srv.start()
}

// hasRepeat reports whether a value occurs twice in s.
func hasRepeat(s []int) bool {
	seen := map[int]bool{}
	for _, v := range s {
		if seen[v] {
			return true
		}
		seen[v] = true
	}
	return false
}

func sortedKeys(m map[int]int) []int {
	out := make([]int, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Ints(out)
	return out
}
