package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/fhirsub/fhirsub/fhirstore"
)

// RunOptions tunes Run for a backend.
type RunOptions struct {
	// Name names the backend in the log; it is printed first.
	Name string
	// SkipAtomicRaces, when not empty, is the reason why the backend cannot
	// decide concurrent read-modify-write races (e.g. FerretDB); the tests
	// that need that are skipped with this reason printed.
	SkipAtomicRaces string
	// Seed fixes the property test's random seed; 0 picks one from the
	// clock (printed either way).
	Seed int64
}

// OpenFunc opens a fresh, empty store for one subtest. Run closes the store
// when the subtest ends; open registers any further clean-up itself.
type OpenFunc func(t *testing.T) fhirstore.Store

// Run runs the contract suite, one subtest per behaviour, each on a store
// from open.
func Run(t *testing.T, open OpenFunc, opts RunOptions) {
	name := opts.Name
	if name == "" {
		name = "unnamed backend"
	}
	t.Logf("storetest: running the fhirstore contract against %s", name)
	s := &suite{open: open, opts: opts}
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"CreateRead", s.testCreateRead},
		{"CreateInvalid", s.testCreateInvalid},
		{"Update", s.testUpdate},
		{"UpdateIfMatch", s.testUpdateIfMatch},
		{"UpdateAsCreate", s.testUpdateAsCreate},
		{"UpdateDeleted", s.testUpdateDeleted},
		{"Delete", s.testDelete},
		{"DeleteErrors", s.testDeleteErrors},
		{"HistoryInstance", s.testHistoryInstance},
		{"HistoryTypeAndSystem", s.testHistoryTypeAndSystem},
		{"HistorySince", s.testHistorySince},
		{"HistoryInteractions", s.testHistoryInteractions},
		{"Transaction", s.testTransaction},
		{"TransactionAtomic", s.testTransactionAtomic},
		{"ChangeFeed", s.testChangeFeed},
		{"ChangesPaging", s.testChangesPaging},
		{"TypeChanges", s.testTypeChanges},
		{"Wait", s.testWait},
		{"ConcurrentWriters", s.testConcurrentWriters},
		{"ConcurrentIfMatch", s.testConcurrentIfMatch},
		{"SearchToken", s.testSearchToken},
		{"SearchReference", s.testSearchReference},
		{"SearchDate", s.testSearchDate},
		{"SearchString", s.testSearchString},
		{"SearchIDAndLastUpdated", s.testSearchIDAndLastUpdated},
		{"SearchPaging", s.testSearchPaging},
		{"SearchSort", s.testSearchSort},
		{"SearchLiveVersionsOnly", s.testSearchLiveVersionsOnly},
		{"SearchProperty", s.testSearchProperty},
		{"Claims", s.testClaims},
		{"ConcurrentClaims", s.testConcurrentClaims},
		{"Ping", s.testPing},
	} {
		t.Run(tc.name, tc.fn)
	}
}

type suite struct {
	open OpenFunc
	opts RunOptions
}

// store opens a fresh store closed at the end of t.
func (s *suite) store(t *testing.T) fhirstore.Store {
	t.Helper()
	st := s.open(t)
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return st
}

// ctxFor is the context of one contract test: 30 s for all it does.
func ctxFor(t *testing.T) context.Context { return ctxWithin(t, 30*time.Second) }

// ctxWithin is ctxFor with a budget of d, for the tests that run hundreds
// of operations under one context (on FerretDB under -race on a loaded
// 2-core machine, 400 queries took longer than 30 s).
func ctxWithin(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// body decodes a JSON object the way the server does (json.Number).
func body(t testing.TB, js string) map[string]any {
	t.Helper()
	b, err := fhirstore.Decode([]byte(js))
	if err != nil {
		t.Fatalf("bad test body %s: %v", js, err)
	}
	return b
}

func patient(t testing.TB, family string) map[string]any {
	return body(t, fmt.Sprintf(`{"resourceType":"Patient","name":[{"family":%q}]}`, family))
}

func mustCreate(t *testing.T, st fhirstore.Store, b map[string]any) *fhirstore.Resource {
	t.Helper()
	res, err := st.Create(ctxFor(t), b)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return res
}

func mustUpdate(t *testing.T, st fhirstore.Store, id string, b map[string]any, ifMatch string) (*fhirstore.Resource, bool) {
	t.Helper()
	res, created, err := st.Update(ctxFor(t), id, b, fhirstore.WriteOptions{IfMatch: ifMatch})
	if err != nil {
		t.Fatalf("Update %s: %v", id, err)
	}
	return res, created
}

func mustDelete(t *testing.T, st fhirstore.Store, typ, id string) *fhirstore.Resource {
	t.Helper()
	res, err := st.Delete(ctxFor(t), typ, id, fhirstore.WriteOptions{})
	if err != nil {
		t.Fatalf("Delete %s/%s: %v", typ, id, err)
	}
	return res
}

func lastSeq(t *testing.T, st fhirstore.Store) int64 {
	t.Helper()
	seq, err := st.LastSeq(ctxFor(t))
	if err != nil {
		t.Fatalf("LastSeq: %v", err)
	}
	return seq
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: error = %v, want %v", what, err, want)
	}
}

// decoded decodes a stored body.
func decoded(t testing.TB, res *fhirstore.Resource) map[string]any {
	t.Helper()
	if res == nil || res.Body == nil {
		t.Fatalf("resource %v has no body", res)
	}
	b, err := fhirstore.Decode(res.Body)
	if err != nil {
		t.Fatalf("stored body of %s/%s: %v", res.Type, res.ID, err)
	}
	return b
}

// metaOf returns body's meta.versionId and meta.lastUpdated.
func metaOf(t testing.TB, b map[string]any) (versionID, lastUpdated string) {
	t.Helper()
	meta, ok := b["meta"].(map[string]any)
	if !ok {
		t.Fatalf("body has no meta object: %v", b)
	}
	versionID, _ = meta["versionId"].(string)
	lastUpdated, _ = meta["lastUpdated"].(string)
	return versionID, lastUpdated
}

// versions lists "type/id/version" of a page, for comparisons.
func versions(p *fhirstore.Page) []string {
	out := make([]string, len(p.Resources))
	for i, r := range p.Resources {
		out[i] = r.Type + "/" + r.ID + "/" + r.VersionID
	}
	return out
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// jsonNumber returns a decimal as the decoder would give it.
func jsonNumber(s string) json.Number { return json.Number(s) }
