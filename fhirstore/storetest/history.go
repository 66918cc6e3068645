package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/fhirsub/fhirsub/fhirstore"
)

func (s *suite) testHistoryInstance(t *testing.T) {
	st := s.store(t)
	ctx := ctxFor(t)
	v1 := mustCreate(t, st, patient(t, "One"))
	mustCreate(t, st, patient(t, "Unrelated"))
	mustUpdate(t, st, v1.ID, patient(t, "Two"), "")
	mustUpdate(t, st, v1.ID, patient(t, "Three"), "")
	mustDelete(t, st, "Patient", v1.ID)

	page, err := st.History(ctx, fhirstore.HistoryRequest{Type: "Patient", ID: v1.ID})
	if err != nil {
		t.Fatalf("History: %v", err)
	}
	p := "Patient/" + v1.ID + "/"
	if want := []string{p + "4", p + "3", p + "2", p + "1"}; page.Total != 4 || !equalStrings(versions(page), want) {
		t.Fatalf("instance history = %v total %d, want %v total 4", versions(page), page.Total, want)
	}
	if !page.Resources[0].Deleted || page.Resources[0].Body != nil {
		t.Errorf("newest entry is not the tombstone: %+v", page.Resources[0])
	}
	for _, r := range page.Resources[1:] {
		if r.Deleted || r.Body == nil {
			t.Errorf("version %s has no body", r.VersionID)
		}
	}
	page, err = st.History(ctx, fhirstore.HistoryRequest{Type: "Patient", ID: v1.ID, Count: 2, Offset: 1})
	if err != nil {
		t.Fatalf("History page: %v", err)
	}
	if want := []string{p + "3", p + "2"}; page.Total != 4 || !equalStrings(versions(page), want) {
		t.Errorf("history page = %v total %d, want %v total 4", versions(page), page.Total, want)
	}
	page, err = st.History(ctx, fhirstore.HistoryRequest{Type: "Patient", ID: v1.ID, Count: 2, Offset: 10})
	if err != nil || len(page.Resources) != 0 || page.Total != 4 {
		t.Errorf("history past the end = %v total %d, %v", versions(page), page.Total, err)
	}
	_, err = st.History(ctx, fhirstore.HistoryRequest{Type: "Patient", ID: "never-existed"})
	wantErr(t, "instance history of an unknown resource", err, fhirstore.ErrNotFound)
}

func (s *suite) testHistoryTypeAndSystem(t *testing.T) {
	st := s.store(t)
	ctx := ctxFor(t)
	var all, patients []string // newest last
	add := func(r *fhirstore.Resource) {
		v := r.Type + "/" + r.ID + "/" + r.VersionID
		all = append(all, v)
		if r.Type == "Patient" {
			patients = append(patients, v)
		}
	}
	pa := mustCreate(t, st, patient(t, "A"))
	add(pa)
	add(mustCreate(t, st, body(t, `{"resourceType":"Observation","status":"final"}`)))
	r, _ := mustUpdate(t, st, pa.ID, patient(t, "A2"), "")
	add(r)
	add(mustCreate(t, st, patient(t, "B")))
	add(mustDelete(t, st, "Patient", pa.ID))
	add(mustCreate(t, st, body(t, `{"resourceType":"Observation","status":"amended"}`)))

	reverse := func(in []string) []string {
		out := make([]string, len(in))
		for i, v := range in {
			out[len(in)-1-i] = v
		}
		return out
	}
	page, err := st.History(ctx, fhirstore.HistoryRequest{Type: "Patient"})
	if err != nil {
		t.Fatalf("type history: %v", err)
	}
	if want := reverse(patients); page.Total != len(want) || !equalStrings(versions(page), want) {
		t.Errorf("type history = %v total %d\nwant %v", versions(page), page.Total, want)
	}
	page, err = st.History(ctx, fhirstore.HistoryRequest{})
	if err != nil {
		t.Fatalf("system history: %v", err)
	}
	if want := reverse(all); page.Total != len(want) || !equalStrings(versions(page), want) {
		t.Errorf("system history = %v total %d\nwant %v", versions(page), page.Total, want)
	}
	page, err = st.History(ctx, fhirstore.HistoryRequest{Count: 2, Offset: 2})
	if err != nil {
		t.Fatalf("system history page: %v", err)
	}
	if want := reverse(all)[2:4]; page.Total != len(all) || !equalStrings(versions(page), want) {
		t.Errorf("system history page = %v total %d, want %v", versions(page), page.Total, want)
	}
	page, err = st.History(ctx, fhirstore.HistoryRequest{Type: "Encounter"})
	if err != nil || page.Total != 0 || len(page.Resources) != 0 {
		t.Errorf("history of an empty type = %+v, %v", page, err)
	}
}

func (s *suite) testHistorySince(t *testing.T) {
	st := s.store(t)
	ctx := ctxFor(t)
	old := mustCreate(t, st, patient(t, "Old"))
	time.Sleep(10 * time.Millisecond)
	since := fhirstore.Now()
	time.Sleep(10 * time.Millisecond)
	v2, _ := mustUpdate(t, st, old.ID, patient(t, "New"), "")
	fresh := mustCreate(t, st, patient(t, "Fresh"))

	page, err := st.History(ctx, fhirstore.HistoryRequest{Since: since})
	if err != nil {
		t.Fatalf("History since: %v", err)
	}
	want := []string{"Patient/" + fresh.ID + "/1", "Patient/" + v2.ID + "/2"}
	if page.Total != 2 || !equalStrings(versions(page), want) {
		t.Errorf("system history since = %v total %d, want %v", versions(page), page.Total, want)
	}
	page, err = st.History(ctx, fhirstore.HistoryRequest{Type: "Patient", ID: old.ID, Since: since})
	if err != nil || page.Total != 1 || !equalStrings(versions(page), want[1:]) {
		t.Errorf("instance history since = %v, %v; want %v", versions(page), err, want[1:])
	}
	page, err = st.History(ctx, fhirstore.HistoryRequest{Type: "Patient", Since: fhirstore.Now().Add(time.Hour)})
	if err != nil || page.Total != 0 {
		t.Errorf("type history since the future = %v, %v", versions(page), err)
	}
}

// testHistoryInteractions checks that every history entry says which
// write made its version: an update of a deleted resource is a create.
func (s *suite) testHistoryInteractions(t *testing.T) {
	st := s.store(t)
	ctx := ctxFor(t)
	v1 := mustCreate(t, st, patient(t, "One"))
	mustUpdate(t, st, v1.ID, patient(t, "Two"), "")
	mustDelete(t, st, "Patient", v1.ID)
	mustUpdate(t, st, v1.ID, patient(t, "Again"), "")
	mustCreate(t, st, body(t, `{"resourceType":"Observation","status":"final"}`))
	want := []fhirstore.Interaction{fhirstore.InteractionCreate, fhirstore.InteractionDelete, fhirstore.InteractionUpdate, fhirstore.InteractionCreate}
	for _, req := range []fhirstore.HistoryRequest{
		{Type: "Patient", ID: v1.ID},
		{Type: "Patient"},
		{},
		{Type: "Patient", ID: v1.ID, Count: 2, Offset: 1},
	} {
		page, err := st.History(ctx, req)
		if err != nil {
			t.Fatalf("History %+v: %v", req, err)
		}
		var got []fhirstore.Interaction
		for _, r := range page.Resources {
			if r.Type == "Patient" {
				got = append(got, r.Interaction)
			}
		}
		w := want
		if req.Count == 2 {
			w = want[1:3]
		}
		if !slices.Equal(got, w) {
			t.Errorf("History %+v: interactions %v, want %v", req, got, w)
		}
	}
}
