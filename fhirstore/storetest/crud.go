package storetest

import (
	"bytes"
	"testing"
	"time"

	"github.com/fhirsub/fhirsub/fhirstore"
)

func (s *suite) testCreateRead(t *testing.T) {
	st := s.store(t)
	ctx := ctxFor(t)
	before := time.Now().Add(-time.Second)
	in := body(t, `{"resourceType":"Patient","id":"client-chosen","meta":{"profile":["http://example.org/p"]},`+
		`"name":[{"family":"Chalmers","given":["Peter"]}],"extension":[{"url":"http://x","valueDecimal":1.50}]}`)
	res := mustCreate(t, st, in)
	if res.Type != "Patient" || !fhirstore.ValidID(res.ID) || res.VersionID != "1" || res.Deleted {
		t.Fatalf("Create = %+v, want Patient/<new id> version 1", res)
	}
	if res.ID == "client-chosen" {
		t.Errorf("Create kept the client's id; the server assigns ids")
	}
	if res.LastUpdated.Location() != time.UTC || res.LastUpdated.Nanosecond()%int(time.Millisecond) != 0 ||
		res.LastUpdated.Before(before) || res.LastUpdated.After(time.Now().Add(time.Second)) {
		t.Errorf("LastUpdated = %v, want now in UTC with millisecond precision", res.LastUpdated)
	}
	b := decoded(t, res)
	vid, lu := metaOf(t, b)
	if b["id"] != res.ID || vid != "1" || lu != fhirstore.FormatInstant(res.LastUpdated) {
		t.Errorf("stored body id/meta = %v/%q/%q, want %s/1/%s", b["id"], vid, lu, res.ID, fhirstore.FormatInstant(res.LastUpdated))
	}
	if meta := b["meta"].(map[string]any); meta["profile"] == nil {
		t.Errorf("Create dropped meta.profile: %v", meta)
	}
	if !bytes.Contains(res.Body, []byte(`"valueDecimal":1.50`)) {
		t.Errorf("decimal precision lost: %s", res.Body)
	}

	got, err := st.Read(ctx, "Patient", res.ID)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if !sameVersion(got, res) || !bytes.Equal(got.Body, res.Body) {
		t.Errorf("Read = %+v\nwant %+v", got, res)
	}
	v1, err := st.VRead(ctx, "Patient", res.ID, "1")
	if err != nil || !bytes.Equal(v1.Body, res.Body) || !sameVersion(v1, res) {
		t.Errorf("VRead 1 = %+v, %v", v1, err)
	}
	_, err = st.VRead(ctx, "Patient", res.ID, "2")
	wantErr(t, "VRead of a missing version", err, fhirstore.ErrNotFound)
	_, err = st.VRead(ctx, "Patient", res.ID, "x")
	wantErr(t, "VRead of a malformed version", err, fhirstore.ErrNotFound)
	_, err = st.Read(ctx, "Patient", "no-such-id")
	wantErr(t, "Read of an unknown id", err, fhirstore.ErrNotFound)
	_, err = st.Read(ctx, "Observation", res.ID)
	wantErr(t, "Read with the wrong type", err, fhirstore.ErrNotFound)

	other := mustCreate(t, st, patient(t, "Other"))
	if other.ID == res.ID {
		t.Fatalf("two creates got the same id %s", res.ID)
	}
}

func sameVersion(a, b *fhirstore.Resource) bool {
	return a.Type == b.Type && a.ID == b.ID && a.VersionID == b.VersionID &&
		a.LastUpdated.Equal(b.LastUpdated) && a.Deleted == b.Deleted
}

func (s *suite) testCreateInvalid(t *testing.T) {
	st := s.store(t)
	ctx := ctxFor(t)
	for _, js := range []string{`{"name":[]}`, `{"resourceType":42}`, `{"resourceType":""}`} {
		_, err := st.Create(ctx, body(t, js))
		wantErr(t, "Create "+js, err, fhirstore.ErrInvalid)
	}
	if seq := lastSeq(t, st); seq != 0 {
		t.Errorf("failed creates left LastSeq = %d", seq)
	}
}

func (s *suite) testUpdate(t *testing.T) {
	st := s.store(t)
	ctx := ctxFor(t)
	v1 := mustCreate(t, st, patient(t, "One"))
	time.Sleep(3 * time.Millisecond)
	v2, created := mustUpdate(t, st, v1.ID, patient(t, "Two"), "")
	if created || v2.ID != v1.ID || v2.VersionID != "2" || v2.Deleted {
		t.Fatalf("Update = %+v created=%v, want version 2, not created", v2, created)
	}
	if !v2.LastUpdated.After(v1.LastUpdated) {
		t.Errorf("version 2 LastUpdated %v not after version 1 %v", v2.LastUpdated, v1.LastUpdated)
	}
	if vid, _ := metaOf(t, decoded(t, v2)); vid != "2" {
		t.Errorf("stored meta.versionId = %q, want 2", vid)
	}
	cur, err := st.Read(ctx, "Patient", v1.ID)
	if err != nil || cur.VersionID != "2" || !bytes.Equal(cur.Body, v2.Body) {
		t.Fatalf("Read after update = %+v, %v", cur, err)
	}
	old, err := st.VRead(ctx, "Patient", v1.ID, "1")
	if err != nil || !bytes.Equal(old.Body, v1.Body) {
		t.Fatalf("VRead 1 after update = %+v, %v", old, err)
	}
}

func (s *suite) testUpdateIfMatch(t *testing.T) {
	st := s.store(t)
	ctx := ctxFor(t)
	v1 := mustCreate(t, st, patient(t, "One"))
	v2, _ := mustUpdate(t, st, v1.ID, patient(t, "Two"), "1")
	if v2.VersionID != "2" {
		t.Fatalf("Update If-Match 1 gave version %s", v2.VersionID)
	}
	seq := lastSeq(t, st)
	_, _, err := st.Update(ctx, v1.ID, patient(t, "Stale"), fhirstore.WriteOptions{IfMatch: "1"})
	wantErr(t, "Update with a stale If-Match", err, fhirstore.ErrVersionConflict)
	_, _, err = st.Update(ctx, "never-existed", patient(t, "X"), fhirstore.WriteOptions{IfMatch: "1"})
	wantErr(t, "Update of a missing resource with If-Match", err, fhirstore.ErrVersionConflict)
	if got := lastSeq(t, st); got != seq {
		t.Errorf("failed updates moved LastSeq from %d to %d", seq, got)
	}
	cur, err := st.Read(ctx, "Patient", v1.ID)
	if err != nil || cur.VersionID != "2" {
		t.Fatalf("Read after conflicts = %+v, %v", cur, err)
	}
	if _, err := st.Read(ctx, "Patient", "never-existed"); err == nil {
		t.Fatalf("conflicting update created the resource")
	}
	v3, _ := mustUpdate(t, st, v1.ID, patient(t, "Three"), "2")
	if v3.VersionID != "3" {
		t.Fatalf("Update If-Match 2 gave version %s", v3.VersionID)
	}
}

func (s *suite) testUpdateAsCreate(t *testing.T) {
	st := s.store(t)
	ctx := ctxFor(t)
	res, created := mustUpdate(t, st, "client-id.1", patient(t, "Chosen"), "")
	if !created || res.ID != "client-id.1" || res.VersionID != "1" {
		t.Fatalf("update-as-create = %+v created=%v", res, created)
	}
	got, err := st.Read(ctx, "Patient", "client-id.1")
	if err != nil || got.VersionID != "1" {
		t.Fatalf("Read = %+v, %v", got, err)
	}
	changes, err := st.Changes(ctx, 0, 10)
	if err != nil || len(changes) != 1 || changes[0].Interaction != fhirstore.InteractionCreate || changes[0].PreviousVersionID != "" {
		t.Fatalf("changes after update-as-create = %+v, %v", changes, err)
	}
	_, _, err = st.Update(ctx, "bad id!", patient(t, "X"), fhirstore.WriteOptions{})
	wantErr(t, "Update with an invalid id", err, fhirstore.ErrInvalid)
	_, _, err = st.Update(ctx, "ok-id", body(t, `{"name":[]}`), fhirstore.WriteOptions{})
	wantErr(t, "Update without resourceType", err, fhirstore.ErrInvalid)
}

func (s *suite) testUpdateDeleted(t *testing.T) {
	st := s.store(t)
	ctx := ctxFor(t)
	v1 := mustCreate(t, st, patient(t, "One"))
	mustDelete(t, st, "Patient", v1.ID)
	seq := lastSeq(t, st)
	v3, created := mustUpdate(t, st, v1.ID, patient(t, "Back"), "")
	if !created || v3.VersionID != "3" || v3.Deleted {
		t.Fatalf("update of a deleted resource = %+v created=%v, want version 3 created", v3, created)
	}
	changes, err := st.Changes(ctx, seq, 10)
	if err != nil || len(changes) != 1 {
		t.Fatalf("Changes = %+v, %v", changes, err)
	}
	if c := changes[0]; c.Interaction != fhirstore.InteractionCreate || c.PreviousVersionID != "" || c.VersionID != "3" {
		t.Errorf("change of update-after-delete = %+v, want create of version 3 with no previous version", c)
	}
	if cur, err := st.Read(ctx, "Patient", v1.ID); err != nil || cur.VersionID != "3" {
		t.Errorf("Read = %+v, %v", cur, err)
	}
}

func (s *suite) testDelete(t *testing.T) {
	st := s.store(t)
	ctx := ctxFor(t)
	v1 := mustCreate(t, st, patient(t, "One"))
	v2, _ := mustUpdate(t, st, v1.ID, patient(t, "Two"), "")
	tomb := mustDelete(t, st, "Patient", v1.ID)
	if !tomb.Deleted || tomb.VersionID != "3" || tomb.Body != nil || tomb.ID != v1.ID || tomb.Type != "Patient" {
		t.Fatalf("Delete = %+v, want tombstone version 3 without body", tomb)
	}
	got, err := st.Read(ctx, "Patient", v1.ID)
	wantErr(t, "Read of a deleted resource", err, fhirstore.ErrGone)
	if got == nil || !got.Deleted || got.VersionID != "3" {
		t.Errorf("Read of a deleted resource returned %+v, want the tombstone", got)
	}
	for _, want := range []*fhirstore.Resource{v1, v2} {
		old, err := st.VRead(ctx, "Patient", v1.ID, want.VersionID)
		if err != nil || !bytes.Equal(old.Body, want.Body) || old.Deleted {
			t.Errorf("VRead %s after delete = %+v, %v", want.VersionID, old, err)
		}
	}
	vt, err := st.VRead(ctx, "Patient", v1.ID, "3")
	if err != nil || !vt.Deleted || vt.Body != nil {
		t.Errorf("VRead of the tombstone = %+v, %v", vt, err)
	}
	seq := lastSeq(t, st)
	again := mustDelete(t, st, "Patient", v1.ID)
	if !again.Deleted || again.VersionID != "3" {
		t.Errorf("second Delete = %+v, want the existing tombstone", again)
	}
	if got := lastSeq(t, st); got != seq {
		t.Errorf("second Delete wrote a change: LastSeq %d → %d", seq, got)
	}
}

func (s *suite) testDeleteErrors(t *testing.T) {
	st := s.store(t)
	ctx := ctxFor(t)
	_, err := st.Delete(ctx, "Patient", "never-existed", fhirstore.WriteOptions{})
	wantErr(t, "Delete of an unknown resource", err, fhirstore.ErrNotFound)
	v1 := mustCreate(t, st, patient(t, "One"))
	_, err = st.Delete(ctx, "Patient", v1.ID, fhirstore.WriteOptions{IfMatch: "7"})
	wantErr(t, "Delete with a wrong If-Match", err, fhirstore.ErrVersionConflict)
	if cur, err := st.Read(ctx, "Patient", v1.ID); err != nil || cur.VersionID != "1" {
		t.Fatalf("Read after a refused delete = %+v, %v", cur, err)
	}
	tomb, err := st.Delete(ctx, "Patient", v1.ID, fhirstore.WriteOptions{IfMatch: "1"})
	if err != nil || tomb.VersionID != "2" {
		t.Fatalf("Delete with the right If-Match = %+v, %v", tomb, err)
	}
	if seq := lastSeq(t, st); seq != 2 {
		t.Errorf("LastSeq = %d, want 2 (one create, one delete)", seq)
	}
}

func (s *suite) testPing(t *testing.T) {
	st := s.store(t)
	if err := st.Ping(ctxFor(t)); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}
