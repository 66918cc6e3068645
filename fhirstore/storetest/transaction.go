package storetest

import (
	"errors"
	"testing"

	"github.com/fhirsub/fhirsub/fhirstore"
)

func (s *suite) testTransaction(t *testing.T) {
	st := s.store(t)
	ctx := ctxFor(t)
	b := mustCreate(t, st, patient(t, "B"))
	c := mustCreate(t, st, patient(t, "C"))
	seq := lastSeq(t, st)

	results, err := st.Transaction(ctx, []fhirstore.Op{
		{Method: fhirstore.MethodCreate, Body: patient(t, "New")},
		{Method: fhirstore.MethodCreate, ID: "pre-assigned", Body: body(t, `{"resourceType":"Observation","status":"final"}`)},
		{Method: fhirstore.MethodUpdate, ID: b.ID, Body: patient(t, "B2"), IfMatch: "1"},
		{Method: fhirstore.MethodUpdate, ID: "pre-assigned", Type: "Observation", Body: body(t, `{"resourceType":"Observation","status":"amended"}`)},
		{Method: fhirstore.MethodUpdate, ID: "put-new", Body: patient(t, "Put")},
		{Method: fhirstore.MethodDelete, Type: "Patient", ID: c.ID},
	})
	if err != nil {
		t.Fatalf("Transaction: %v", err)
	}
	if len(results) != 6 {
		t.Fatalf("Transaction returned %d results, want 6", len(results))
	}
	type want struct {
		typ, version string
		created      bool
		deleted      bool
	}
	for i, w := range []want{
		{"Patient", "1", true, false},
		{"Observation", "1", true, false},
		{"Patient", "2", false, false},
		{"Observation", "2", false, false},
		{"Patient", "1", true, false},
		{"Patient", "2", false, true},
	} {
		r := results[i].Resource
		if r == nil || r.Type != w.typ || r.VersionID != w.version || r.Deleted != w.deleted ||
			(w.typ != "" && i >= 2 && results[i].Created != w.created) {
			t.Errorf("result %d = %+v created=%v, want %+v", i, r, results[i].Created, w)
		}
	}
	if results[1].Resource.ID != "pre-assigned" || results[4].Resource.ID != "put-new" {
		t.Errorf("transaction ids = %s, %s", results[1].Resource.ID, results[4].Resource.ID)
	}
	if _, err := st.Read(ctx, "Patient", results[0].Resource.ID); err != nil {
		t.Errorf("Read of the created patient: %v", err)
	}
	if r, err := st.Read(ctx, "Observation", "pre-assigned"); err != nil || r.VersionID != "2" {
		t.Errorf("Read Observation/pre-assigned = %+v, %v", r, err)
	}
	_, err = st.Read(ctx, "Patient", c.ID)
	wantErr(t, "Read of the patient deleted in the transaction", err, fhirstore.ErrGone)
	changes, err := st.Changes(ctx, seq, 100)
	if err != nil {
		t.Fatalf("Changes: %v", err)
	}
	if len(changes) != 6 {
		t.Fatalf("transaction wrote %d changes, want 6", len(changes))
	}
	for i, ch := range changes {
		r := results[i].Resource
		if ch.Seq != seq+int64(i)+1 || ch.Type != r.Type || ch.ID != r.ID || ch.VersionID != r.VersionID {
			t.Errorf("change %d = %+v, want seq %d for %s/%s/%s", i, ch, seq+int64(i)+1, r.Type, r.ID, r.VersionID)
		}
	}
}

func (s *suite) testTransactionAtomic(t *testing.T) {
	st := s.store(t)
	ctx := ctxFor(t)
	b := mustCreate(t, st, patient(t, "B"))
	seq := lastSeq(t, st)

	cases := []struct {
		name  string
		ops   []fhirstore.Op
		index int
		err   error
	}{
		{"ErrVersionConflict", []fhirstore.Op{
			{Method: fhirstore.MethodCreate, ID: "tx-a", Body: patient(t, "A")},
			{Method: fhirstore.MethodUpdate, ID: b.ID, Body: patient(t, "B2")},
			{Method: fhirstore.MethodUpdate, ID: b.ID, Body: patient(t, "B3"), IfMatch: "1"},
		}, 2, fhirstore.ErrVersionConflict},
		{"ErrNotFound", []fhirstore.Op{
			{Method: fhirstore.MethodCreate, ID: "tx-a", Body: patient(t, "A")},
			{Method: fhirstore.MethodDelete, Type: "Patient", ID: b.ID},
			{Method: fhirstore.MethodDelete, Type: "Patient", ID: "never-existed"},
		}, 2, fhirstore.ErrNotFound},
		{"ErrInvalid", []fhirstore.Op{
			{Method: fhirstore.MethodUpdate, ID: "tx-a", Body: patient(t, "A")},
			{Method: fhirstore.MethodCreate, Body: body(t, `{"name":[]}`)},
		}, 1, fhirstore.ErrInvalid},
		{"ErrInvalidTypeMismatch", []fhirstore.Op{
			{Method: fhirstore.MethodUpdate, ID: "tx-a", Body: patient(t, "A")},
			{Method: fhirstore.MethodUpdate, ID: b.ID, Type: "Observation", Body: patient(t, "B2")},
		}, 1, fhirstore.ErrInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := st.Transaction(ctx, tc.ops)
			var oe *fhirstore.OpError
			if !errors.As(err, &oe) || oe.Index != tc.index || !errors.Is(err, tc.err) {
				t.Fatalf("Transaction error = %v, want *OpError at index %d wrapping %v", err, tc.index, tc.err)
			}
			if _, err := st.Read(ctx, "Patient", "tx-a"); !errors.Is(err, fhirstore.ErrNotFound) {
				t.Errorf("failed transaction left Patient/tx-a behind (Read error %v)", err)
			}
			if cur, err := st.Read(ctx, "Patient", b.ID); err != nil || cur.VersionID != "1" {
				t.Errorf("failed transaction changed Patient/%s: %+v, %v", b.ID, cur, err)
			}
			if got := lastSeq(t, st); got != seq {
				t.Errorf("failed transaction moved LastSeq %d → %d", seq, got)
			}
			if ch, err := st.Changes(ctx, seq, 10); err != nil || len(ch) != 0 {
				t.Errorf("failed transaction left changes %+v, %v", ch, err)
			}
		})
	}
}
