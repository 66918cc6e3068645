package web_test

import (
	"net/http"
	"strings"
	"testing"
)

func TestTransactionResolvesReferences(t *testing.T) {
	s := mustServer(t)
	tx := map[string]any{"resourceType": "Bundle", "type": "transaction", "entry": []any{
		map[string]any{"fullUrl": "urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a", "resource": patient("Tx"),
			"request": map[string]any{"method": "POST", "url": "Patient"}},
		map[string]any{"fullUrl": "urn:uuid:88f151c0-a954-468a-88bd-5ae15c08e059",
			"resource": observation("urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a", "8867-4", "2024-01-01"),
			"request":  map[string]any{"method": "POST", "url": "Observation"}},
	}}
	r := s.do("POST", "/", tx).wantStatus(t, http.StatusOK)
	if str(r.JSON, "type") != "transaction-response" || str(r.JSON, "entry", 0, "response", "status") != "201 Created" {
		t.Fatalf("transaction: %s", r.Body)
	}
	pid := str(r.JSON, "entry", 0, "resource", "id")
	if ref := str(r.JSON, "entry", 1, "resource", "subject", "reference"); ref != "Patient/"+pid {
		t.Fatalf("reference not rewritten: %q (patient %s)", ref, pid)
	}
	s.do("GET", "/Observation?subject=Patient/"+pid, nil).wantStatus(t, http.StatusOK)
}

func TestTransactionIsAtomic(t *testing.T) {
	s := mustServer(t)
	p := patient("Atomic")
	p["id"] = "atomic-1"
	s.do("PUT", "/Patient/atomic-1", p).wantStatus(t, http.StatusCreated)
	tx := map[string]any{"resourceType": "Bundle", "type": "transaction", "entry": []any{
		map[string]any{"resource": patient("New"), "request": map[string]any{"method": "POST", "url": "Patient"}},
		map[string]any{"resource": p, "request": map[string]any{"method": "PUT", "url": "Patient/atomic-1", "ifMatch": `W/"9"`}},
	}}
	s.do("POST", "/", tx).wantOutcome(t, http.StatusPreconditionFailed, "entry 1")
	r := s.do("GET", "/Patient?name=New", nil).wantStatus(t, http.StatusOK)
	if str(r.JSON, "total") != "0" {
		t.Fatalf("failed transaction left a resource behind: %s", r.Body)
	}
	h := s.do("GET", "/_history", nil).wantStatus(t, http.StatusOK)
	if str(h.JSON, "total") != "1" {
		t.Fatalf("failed transaction left history behind: %s", str(h.JSON, "total"))
	}
	// An invalid resource inside a transaction is refused before anything runs.
	bad := map[string]any{"resourceType": "Bundle", "type": "transaction", "entry": []any{
		map[string]any{"resource": map[string]any{"resourceType": "Patient", "gender": "robot"}, "request": map[string]any{"method": "POST", "url": "Patient"}},
	}}
	s.do("POST", "/", bad).wantOutcome(t, http.StatusBadRequest, "Patient.gender")
}

func TestBatchEntriesStandAlone(t *testing.T) {
	s := mustServer(t)
	b := map[string]any{"resourceType": "Bundle", "type": "batch", "entry": []any{
		map[string]any{"resource": patient("B1"), "request": map[string]any{"method": "POST", "url": "Patient"}},
		map[string]any{"request": map[string]any{"method": "GET", "url": "Patient/missing"}},
		map[string]any{"request": map[string]any{"method": "FROB", "url": "Patient"}},
		map[string]any{"request": map[string]any{"method": "GET", "url": "Patient?name=B1"}},
	}}
	r := s.do("POST", "/", b).wantStatus(t, http.StatusOK)
	want := []string{"201", "404", "400", "200"}
	for i, w := range want {
		if got := str(r.JSON, "entry", i, "response", "status"); !strings.HasPrefix(got, w) {
			t.Errorf("entry %d status %q, want %s", i, got, w)
		}
	}
	if str(r.JSON, "entry", 3, "resource", "total") != "1" {
		t.Errorf("batch search: %s", str(r.JSON, "entry", 3))
	}
	s.do("POST", "/", map[string]any{"resourceType": "Bundle", "type": "collection"}).wantOutcome(t, 400, "batch or transaction")
	s.do("POST", "/", patient("notabundle")).wantOutcome(t, 400, "Bundle")
}

// TestBatchRefusesReferencesBetweenEntries: a batch entry whose reference
// is another entry's placeholder fullUrl fails alone (FHIR forbids
// interdependent batch entries, and the placeholder would be stored as a
// reference to nothing); the other entries go on, and a placeholder that
// names no entry is the client's to keep.
func TestBatchRefusesReferencesBetweenEntries(t *testing.T) {
	s := mustServer(t)
	const u, elsewhere = "urn:uuid:7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", "urn:uuid:0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
	b := map[string]any{"resourceType": "Bundle", "type": "batch", "entry": []any{
		map[string]any{"fullUrl": u, "resource": patient("BatchRef"), "request": map[string]any{"method": "POST", "url": "Patient"}},
		map[string]any{"resource": observation(u, "8867-4", "2024-01-01"), "request": map[string]any{"method": "POST", "url": "Observation"}},
		map[string]any{"resource": observation(elsewhere, "8310-5", "2024-01-01"), "request": map[string]any{"method": "POST", "url": "Observation"}},
	}}
	r := s.do("POST", "/", b).wantStatus(t, http.StatusOK)
	for i, want := range []string{"201", "400", "201"} {
		if got := str(r.JSON, "entry", i, "response", "status"); !strings.HasPrefix(got, want) {
			t.Errorf("entry %d: %q, want %s", i, got, want)
		}
	}
	if got := str(r.JSON, "entry", 1, "response", "outcome"); !strings.Contains(got, "send a transaction") {
		t.Errorf("entry 1's outcome: %s", got)
	}
	if r := s.do("GET", "/Observation?code=8867-4", nil).wantStatus(t, http.StatusOK); str(r.JSON, "total") != "0" {
		t.Errorf("the refused entry was stored: %s", r.Body)
	}
}

func TestBundleRefusesRepeatedFullURL(t *testing.T) {
	s := mustServer(t)
	const u = "urn:uuid:0f5b8f43-6a0e-4c35-9a53-3c1f5e0b9f11"
	post := func(name string) map[string]any {
		return map[string]any{"fullUrl": u, "resource": patient(name), "request": map[string]any{"method": "POST", "url": "Patient"}}
	}
	for _, typ := range []string{"transaction", "batch"} {
		b := map[string]any{"resourceType": "Bundle", "type": typ, "entry": []any{
			post("Dup1"),
			map[string]any{"resource": observation(u, "8867-4", "2024-01-01"), "request": map[string]any{"method": "POST", "url": "Observation"}},
			post("Dup2"),
		}}
		s.do("POST", "/", b).wantOutcome(t, http.StatusBadRequest, "Bundle.entry[2].fullUrl")
	}
	for _, q := range []string{"/Patient?name=Dup1", "/Patient?name=Dup2", "/Observation?code=8867-4"} {
		if r := s.do("GET", q, nil).wantStatus(t, http.StatusOK); str(r.JSON, "total") != "0" {
			t.Fatalf("a refused Bundle stored %s: %s", q, r.Body)
		}
	}
	// bdl-7 allows one fullUrl for versions that differ
	v1, v2 := post("Dup3"), post("Dup4")
	v1["resource"].(map[string]any)["meta"] = map[string]any{"versionId": "1"}
	v2["resource"].(map[string]any)["meta"] = map[string]any{"versionId": "2"}
	b := map[string]any{"resourceType": "Bundle", "type": "batch", "entry": []any{v1, v2}}
	r := s.do("POST", "/", b).wantStatus(t, http.StatusOK)
	if str(r.JSON, "entry", 0, "response", "status") != "201 Created" || str(r.JSON, "entry", 1, "response", "status") != "201 Created" {
		t.Fatalf("a batch with one fullUrl for two versions: %s", r.Body)
	}
}

// TestTransactionWritesEachResourceOnce: a transaction whose entries
// write one resource twice (also once its conditional entries are
// resolved) fails and writes nothing.
func TestTransactionWritesEachResourceOnce(t *testing.T) {
	s := mustServer(t)
	p := patient("Once")
	p["id"] = "once-1"
	p["identifier"] = []any{map[string]any{"system": "urn:test", "value": "once"}}
	s.do("PUT", "/Patient/once-1", p).wantStatus(t, http.StatusCreated)
	put := func(active bool) map[string]any {
		q := patient("Once")
		q["id"], q["active"] = "once-1", active
		return map[string]any{"resource": q, "request": map[string]any{"method": "PUT", "url": "Patient/once-1"}}
	}
	for _, entries := range map[string][]any{
		"update and delete": {put(true), map[string]any{"request": map[string]any{"method": "DELETE", "url": "Patient/once-1"}}},
		"two updates":       {put(true), put(false)},
		"an update and a conditional delete of it": {put(true),
			map[string]any{"request": map[string]any{"method": "DELETE", "url": "Patient?identifier=urn:test|once"}}},
	} {
		tx := map[string]any{"resourceType": "Bundle", "type": "transaction", "entry": entries}
		s.do("POST", "/", tx).wantOutcome(t, http.StatusBadRequest, "Bundle.entry[1]", "Patient/once-1 is written by entry[0] too")
	}
	r := s.do("GET", "/Patient/once-1", nil).wantStatus(t, http.StatusOK)
	if v := str(r.JSON, "meta", "versionId"); v != "1" {
		t.Fatalf("a refused transaction wrote Patient/once-1: version %s", v)
	}
	// a read of a resource the transaction writes is not a second write
	tx := map[string]any{"resourceType": "Bundle", "type": "transaction", "entry": []any{
		map[string]any{"request": map[string]any{"method": "GET", "url": "Patient/once-1"}}, put(true)}}
	s.do("POST", "/", tx).wantStatus(t, http.StatusOK)
}

// TestBundleEnvelope: the Bundle's own elements and each entry's are
// checked against the R4 schema, where before a Bundle whose entry was
// not a list, or that misspelt an element, was answered 200 with nothing
// done. A bad entry fails alone in a batch and fails a transaction,
// naming its index.
func TestBundleEnvelope(t *testing.T) {
	s := mustServer(t)
	meta := map[string]any{"request": map[string]any{"method": "GET", "url": "metadata"}}
	for _, c := range []struct {
		name   string
		bundle map[string]any
		says   string
	}{
		{"an element Bundle does not have", map[string]any{"resourceType": "Bundle", "type": "batch", "entries": []any{meta}}, "Bundle.entries"},
		{"entry not a list", map[string]any{"resourceType": "Bundle", "type": "batch", "entry": meta}, "list of entries"},
		{"an empty entry list", map[string]any{"resourceType": "Bundle", "type": "transaction", "entry": []any{}}, "empty list"},
		{"a bad timestamp", map[string]any{"resourceType": "Bundle", "type": "batch", "timestamp": "yesterday", "entry": []any{meta}}, "Bundle.timestamp"},
		{"a transaction entry with a misspelt request element", map[string]any{"resourceType": "Bundle", "type": "transaction", "entry": []any{meta,
			map[string]any{"resource": patient("Envelope"), "request": map[string]any{"method": "POST", "url": "Patient", "ifNoneExists": "identifier=x"}}}},
			"Bundle.entry[1].request.ifNoneExists"},
	} {
		t.Run(c.name, func(t *testing.T) { s.do("POST", "/", c.bundle).wantOutcome(t, http.StatusBadRequest, c.says) })
	}
	r := s.do("POST", "/", map[string]any{"resourceType": "Bundle", "type": "batch", "entry": []any{
		map[string]any{"resource": patient("Envelope"), "request": map[string]any{"method": "POST", "url": "Patient", "ifNoneExists": "identifier=x"}},
		map[string]any{"resource": patient("Envelope2"), "request": map[string]any{"method": "POST", "url": "Patient"}},
	}}).wantStatus(t, http.StatusOK)
	if got := str(r.JSON, "entry", 0, "response", "outcome"); !strings.HasPrefix(str(r.JSON, "entry", 0, "response", "status"), "400") ||
		!strings.Contains(got, "Bundle.entry[0].request.ifNoneExists") {
		t.Errorf("the batch's misspelt entry: %s", str(r.JSON, "entry", 0))
	}
	if got := str(r.JSON, "entry", 1, "response", "status"); !strings.HasPrefix(got, "201") {
		t.Errorf("the batch's good entry: %s", got)
	}
	if r := s.do("GET", "/Patient?name:exact=Envelope", nil).wantStatus(t, http.StatusOK); str(r.JSON, "total") != "0" {
		t.Errorf("a refused entry was stored: %s", r.Body)
	}
}
