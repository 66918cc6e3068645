package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestBatchAndTransactionAsShipped runs batch and transaction Bundles
// through the binary as shipped, dashboard mounted at /, with
// authentication off and with an admin token: every entry is served, and
// the guards of REST DELETE (topic in use) hold for bundle entries too.
func TestBatchAndTransactionAsShipped(t *testing.T) {
	for _, c := range shippedAuths(t, strings.Repeat("bundle-shipped-secret", 2)) {
		t.Run(c.name, func(t *testing.T) {
			p := startServerProc(t, c.flags...)
			resp, err := http.Get(p.base + "/")
			if err != nil {
				t.Fatal(err)
			}
			page, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.Contains(strings.ToLower(string(page)), "<html") {
				t.Fatalf("GET / (the dashboard): %d %.100s", resp.StatusCode, page)
			}
			post := func(b map[string]any) (int, map[string]any) {
				t.Helper()
				code, out, err := fhirDoWith(context.Background(), "POST", p.base+"/", b, c.hdr)
				if err != nil {
					t.Fatal(err)
				}
				return code, out
			}
			statuses := func(out map[string]any) []string {
				var s []string
				for _, e := range asSlice(out["entry"]) {
					r, _ := e.(map[string]any)["response"].(map[string]any)
					st, _ := r["status"].(string)
					s = append(s, st)
				}
				return s
			}
			obs := criticalObservation("x", "2823-3", "bundle")
			obs["subject"] = map[string]any{"reference": "urn:uuid:pat-1"}
			code, out := post(bundle("transaction",
				map[string]any{"fullUrl": "urn:uuid:pat-1", "resource": map[string]any{"resourceType": "Patient"}, "request": map[string]any{"method": "POST", "url": "Patient"}},
				map[string]any{"fullUrl": "urn:uuid:obs-1", "resource": obs, "request": map[string]any{"method": "POST", "url": "Observation"}},
				map[string]any{"resource": topicSubscription("http://127.0.0.1:9/hook", criticalTopic, "id-only"), "request": map[string]any{"method": "POST", "url": "Subscription"}}))
			if code != 200 || strings.Join(statuses(out), ",") != "201 Created,201 Created,201 Created" {
				t.Fatalf("transaction: %d %v", code, out)
			}
			entries := asSlice(out["entry"])
			res := func(i int) map[string]any { return entries[i].(map[string]any)["resource"].(map[string]any) }
			patID, obsID, subID := res(0)["id"].(string), res(1)["id"].(string), res(2)["id"].(string)
			if ref := res(1)["subject"].(map[string]any)["reference"]; ref != "Patient/"+patID {
				t.Errorf("the transaction's reference became %v, want Patient/%s", ref, patID)
			}
			code, out = post(bundle("batch",
				entry("GET", "Patient/"+patID, nil),
				entry("PUT", "Patient/"+patID, map[string]any{"resourceType": "Patient", "id": patID, "active": true}),
				entry("GET", "Observation?subject=Patient/"+patID, nil),
				entry("DELETE", "SubscriptionTopic/critical-result", nil),
				entry("DELETE", "Observation/"+obsID, nil),
				entry("DELETE", "Subscription/"+subID, nil),
				entry("GET", "Subscription/"+subID, nil)))
			got := strings.Join(statuses(out), ",")
			want := "200 OK,200 OK,200 OK,409 Conflict,200 OK,200 OK,410 Gone"
			if code != 200 || got != want {
				raw, _ := json.Marshal(out)
				t.Fatalf("batch: %d %s\nwant %s\n%s", code, got, want, raw)
			}
			if total := asSlice(out["entry"])[2].(map[string]any)["resource"].(map[string]any)["total"]; total != json.Number("1") {
				t.Errorf("batch search total %v, want 1", total)
			}
		})
	}
}
