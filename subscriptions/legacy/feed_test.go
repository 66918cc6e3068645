package legacy_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/fhirsub/fhirsub/channels"
	"github.com/fhirsub/fhirsub/fhirstore"
	"github.com/fhirsub/fhirsub/subscriptions/legacy"
)

const observationJSON = `{"resourceType":"Observation","status":"preliminary",
  "code":{"coding":[{"system":"http://loinc.org","code":"2823-3","display":"Potassium"}]},
  "subject":{"reference":"Patient/p1"},"valueQuantity":{"value":4.1,"unit":"mmol/L"}}`

func TestUpdatesEndToEnd(t *testing.T) {
	checkGoroutines(t)
	s := mustStart(t, "", channels.Config{}, channels.LegacyConfig{})
	ctx := context.Background()
	start := s.proto.Head() // after the built-in topics the pipeline stores

	byType := mustDial(t, s.url)
	subscribe(t, byType, "types", []string{"Observation"}, nil)
	byPatient := mustDial(t, s.url)
	subscribe(t, byPatient, "patient", []string{"*"}, []string{"p1"})
	other := mustDial(t, s.url)
	subscribe(t, other, "other", []string{"*"}, []string{"p2"})
	all := mustDial(t, s.url)
	subscribe(t, all, "all", []string{"*"}, nil)

	if _, _, err := s.store.Update(ctx, "p1", resource(t, `{"resourceType":"Patient","id":"p1"}`), fhirstore.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	created, err := s.store.Create(ctx, resource(t, observationJSON))
	if err != nil {
		t.Fatal(err)
	}
	upd := resource(t, observationJSON)
	upd["status"] = "final"
	updated, _, err := s.store.Update(ctx, created.ID, upd, fhirstore.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.store.Delete(ctx, "Observation", created.ID, fhirstore.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	changes, err := s.store.Changes(ctx, start, 10)
	if err != nil || len(changes) != 4 {
		t.Fatalf("changes: %v %v", changes, err)
	}

	// "*" with no patients sees everything, with the exact shapes. A
	// result_available clinical event follows the update to final.
	m := recvType(t, all, "update")
	if *m.Seq != changes[0].Seq || m.Data["action"] != "created" || m.Data["resource_type"] != "Patient" ||
		m.Data["resource_id"] != "p1" || m.Data["patient_id"] != "p1" {
		t.Errorf("patient create: %s", m.raw)
	}
	m = recvType(t, all, "update")
	res, _ := m.Data["resource"].(map[string]any)
	if *m.Seq != changes[1].Seq || m.Data["action"] != "created" || m.Data["resource_id"] != created.ID ||
		m.Data["patient_id"] != "p1" || res["id"] != created.ID || res["status"] != "preliminary" {
		t.Errorf("observation create: %s", m.raw)
	}
	if ts, err := time.Parse(time.RFC3339Nano, m.Timestamp); err != nil || !ts.Equal(changes[1].Time) {
		t.Errorf("timestamp %q (%v), want %v", m.Timestamp, err, changes[1].Time)
	}
	m = recvType(t, all, "update")
	res, _ = m.Data["resource"].(map[string]any)
	meta, _ := res["meta"].(map[string]any)
	if *m.Seq != changes[2].Seq || m.Data["action"] != "updated" || res["status"] != "final" || meta["versionId"] != updated.VersionID {
		t.Errorf("observation update: %s", m.raw)
	}
	m = recvType(t, all, "clinical_event")
	if *m.Seq != changes[2].Seq || m.Data["event_type"] != "result_available" {
		t.Errorf("result available: %s", m.raw)
	}
	m = recvType(t, all, "update")
	if *m.Seq != changes[3].Seq || m.Data["action"] != "deleted" || m.Data["patient_id"] != "p1" {
		t.Errorf("delete: %s", m.raw)
	}
	if v, ok := m.Data["resource"]; !ok || v != nil {
		t.Errorf("delete must carry \"resource\":null: %s", m.raw)
	}
	expectNothingQueued(t, all)

	// The type filter sees the Observation messages only.
	for _, want := range []string{"created", "updated", "", "deleted"} {
		if want == "" {
			recvType(t, byType, "clinical_event")
			continue
		}
		if m := recvType(t, byType, "update"); m.Data["action"] != want || m.Data["resource_type"] != "Observation" {
			t.Errorf("type filter: %s, want %s", m.raw, want)
		}
	}
	expectNothingQueued(t, byType)
	// The patient filter sees the Patient itself and its Observation.
	for _, seq := range []int64{changes[0].Seq, changes[1].Seq, changes[2].Seq, changes[2].Seq, changes[3].Seq} {
		if m := recv(t, byPatient); *m.Seq != seq {
			t.Errorf("patient filter: %s, want seq %d", m.raw, seq)
		}
	}
	expectNothingQueued(t, byPatient)
	expectNothingQueued(t, other)
}

func TestCriticalResult(t *testing.T) {
	checkGoroutines(t)
	s := mustStart(t, "", channels.Config{}, channels.LegacyConfig{})
	ws := mustDial(t, s.url)
	subscribe(t, ws, "s", []string{"Observation"}, []string{"p1"})
	critical := resource(t, `{"resourceType":"Observation","status":"final",
	  "code":{"coding":[{"system":"http://loinc.org","code":"2823-3","display":"Potassium"}]},
	  "subject":{"reference":"Patient/p1"},"valueQuantity":{"value":6.8,"unit":"mmol/L"},
	  "interpretation":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation","code":"HH"}]}]}`)
	res, err := s.store.Create(context.Background(), critical)
	if err != nil {
		t.Fatal(err)
	}
	update := recvType(t, ws, "update")
	var events []msg
	for range 2 { // critical_result and result_available
		events = append(events, recvType(t, ws, "clinical_event"))
	}
	expectNothingQueued(t, ws)
	i := slices.IndexFunc(events, func(m msg) bool { return m.Data["event_type"] == "critical_result" })
	if i < 0 {
		t.Fatalf("no critical_result among %v", events)
	}
	m := events[i]
	if *m.Seq != *update.Seq {
		t.Errorf("clinical event seq %d, update seq %d", *m.Seq, *update.Seq)
	}
	d, _ := m.Data["details"].(map[string]any)
	want := map[string]any{
		"resource_type": "Observation", "resource_id": res.ID, "patient_id": "p1", "status": "final",
		"code": "2823-3", "display": "Potassium", "value": 6.8, "unit": "mmol/L",
		"topic": "https://fhirsub.org/SubscriptionTopic/critical-result", "action": "created",
	}
	for k, v := range want {
		if d[k] != v {
			t.Errorf("details.%s = %v, want %v (%s)", k, d[k], v, m.raw)
		}
	}
	if interp, _ := d["interpretation"].([]any); len(interp) != 1 || interp[0] != "HH" {
		t.Errorf("details.interpretation = %v", d["interpretation"])
	}

	// A normal value fires no critical_result.
	normal := resource(t, observationJSON)
	normal["status"] = "final"
	if _, err := s.store.Create(context.Background(), normal); err != nil {
		t.Fatal(err)
	}
	recvType(t, ws, "update")
	if m := recvType(t, ws, "clinical_event"); m.Data["event_type"] != "result_available" {
		t.Errorf("normal result: %s", m.raw)
	}
	expectNothingQueued(t, ws)
}

func TestReconnectWithClientIDReplaysMissed(t *testing.T) {
	checkGoroutines(t)
	s := mustStart(t, "", channels.Config{}, channels.LegacyConfig{})
	ctx := context.Background()
	url := s.url + "?client_id=tab-1"
	ws := mustDial(t, url)
	subscribe(t, ws, "s", []string{"Observation"}, nil)
	if _, err := s.store.Create(ctx, resource(t, observationJSON)); err != nil {
		t.Fatal(err)
	}
	first := recvType(t, ws, "update")
	_ = ws.Close()
	eventually(t, "the disconnect", func() bool { return s.hub.Len() == 0 })

	var missed []string
	for range 3 {
		r, err := s.store.Create(ctx, resource(t, observationJSON))
		if err != nil {
			t.Fatal(err)
		}
		missed = append(missed, r.ID)
	}
	if _, err := s.store.Create(ctx, resource(t, `{"resourceType":"Condition","subject":{"reference":"Patient/p1"}}`)); err != nil {
		t.Fatal(err)
	}

	ws = mustDial(t, url)
	recvType(t, ws, "subscribed") // restored
	for i, id := range missed {
		m := recvType(t, ws, "update")
		if m.Data["resource_id"] != id || *m.Seq != *first.Seq+int64(i)+1 {
			t.Errorf("replay %d: %s, want %s", i, m.raw, id)
		}
	}
	expectNothingQueued(t, ws)
}

func TestResumeAcrossRestart(t *testing.T) {
	checkGoroutines(t)
	path := filepath.Join(t.TempDir(), "fhir.db")
	ctx := context.Background()

	s1 := mustStart(t, path, channels.Config{}, channels.LegacyConfig{})
	ws := mustDial(t, s1.url)
	subscribe(t, ws, "s", []string{"Observation"}, nil)
	if _, err := s1.store.Create(ctx, resource(t, observationJSON)); err != nil {
		t.Fatal(err)
	}
	last := *recvType(t, ws, "update").Seq
	s1.stop(t)
	// The client saw the server go away.
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := ws.ReadMessage(); err == nil {
		t.Fatal("connection still open after the server stopped")
	}

	// Written while the client was away, partly before the new feed
	// started (so not in its memory).
	store := mustOpenStore(t, path)
	var ids []string
	for range 2 {
		r, err := store.Create(ctx, resource(t, observationJSON))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := mustStart(t, path, channels.Config{}, channels.LegacyConfig{})
	r, err := s2.store.Create(ctx, resource(t, observationJSON))
	if err != nil {
		t.Fatal(err)
	}
	ids = append(ids, r.ID)
	eventually(t, "the new feed to publish the last write", func() bool { return s2.proto.Head() == last+3 })

	ws = mustDial(t, s2.url)
	subscribe(t, ws, "s", []string{"Observation"}, nil)
	b, _ := json.Marshal(map[string]any{"type": "resume", "data": map[string]any{"since": last}})
	send(t, ws, string(b))
	for i, id := range ids {
		m := recvType(t, ws, "update")
		if m.Data["resource_id"] != id || *m.Seq != last+int64(i)+1 {
			t.Errorf("resume %d: %s, want %s", i, m.raw, id)
		}
	}
	if m := recvType(t, ws, "resumed"); m.Data["replayed"] != 3.0 || *m.Seq != last+3 {
		t.Errorf("resumed: %s", m.raw)
	}
}

func TestFeedShutdownBeforeStart(t *testing.T) {
	checkGoroutines(t)
	db := mustOpenStore(t, filepath.Join(t.TempDir(), "x.db"))
	defer db.Close()
	proto, _ := channels.NewLegacy(channels.LegacyConfig{})
	f, err := legacy.New(legacy.Config{Store: db, Sink: proto})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := f.Start(context.Background()); err == nil {
		t.Error("Start after Shutdown succeeded")
	}
	if _, err := legacy.New(legacy.Config{Sink: proto}); err == nil {
		t.Error("New without a store succeeded")
	}
	if _, err := legacy.New(legacy.Config{Store: db}); err == nil {
		t.Error("New without a sink succeeded")
	}
}
