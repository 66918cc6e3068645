package main

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fhirsub/fhirsub/fhirstore/sqlite"
)

// TestRestartNewSubscriptionAsShipped runs the binary as shipped
// (dashboard mounted), with authentication off and on. With the server
// stopped, an Observation for a patient and then a Subscription on that
// patient are written straight into its store, past the matcher's stored
// cursor: the state a stop between the Subscription's commit and the
// matcher reaching it leaves. After the restart one more Observation is
// posted. Events are numbered in the feed's order, so the subscription's
// event 1 must be that later Observation: the earlier one was written
// before the subscription existed.
func TestRestartNewSubscriptionAsShipped(t *testing.T) {
	if testing.Short() {
		t.Skip("restart test skipped in -short mode (starts the binary)")
	}
	for _, c := range shippedAuths(t, strings.Repeat("restart-shipped-secret", 2)) {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			rcv := newHookReceiver(t)
			srv := startServerProc(t, append(slices.Clone(c.flags), "--log-level", "error")...)
			create := func(body map[string]any) string {
				t.Helper()
				typ, _ := body["resourceType"].(string)
				code, out, err := fhirDoWith(ctx, "POST", srv.base+"/"+typ, body, c.hdr)
				if err != nil || code != http.StatusCreated {
					t.Fatalf("POST %s: %d %v %v", typ, code, out, err)
				}
				id, _ := out["id"].(string)
				return id
			}
			patient := create(map[string]any{"resourceType": "Patient", "name": []any{map[string]any{"family": "Restart"}}})

			srv.stop()
			db, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(srv.args[slices.Index(srv.args, "--data")+1], "fhirsub.db")})
			if err != nil {
				t.Fatal(err)
			}
			early, err := db.Create(ctx, criticalObservation(patient, loincPotassium, "early"))
			if err != nil {
				t.Fatal(err)
			}
			sub, err := db.Create(ctx, topicSubscription(rcv.URL(), criticalTopic, "id-only", "Observation?patient=Patient/"+patient))
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			srv.start()
			late := create(criticalObservation(patient, loincPotassium, "late"))

			got := rcv.waitUntil(30*time.Second, func() bool { return len(rcv.snapshot(sub.ID).deliveries) > 0 })
			log := rcv.snapshot(sub.ID)
			line := fmt.Sprintf("restart (%s): a subscription written after Observation/%s and before the restart: events %v, event 1 focus %q (want Observation/%s)",
				c.name, early.ID, sortedKeys(log.deliveries), log.focus[1], late)
			t.Log(line)
			reportFigure(line)
			if !got || !strings.HasSuffix(log.focus[1], "/Observation/"+late) {
				t.Errorf("event 1 of the new subscription is %q, want the Observation posted after the restart, %s", log.focus[1], late)
			}
		})
	}
}
