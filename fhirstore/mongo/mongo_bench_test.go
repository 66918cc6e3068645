package mongo

import (
	"context"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/fhirsub/fhirsub/conformance/search"
	"github.com/fhirsub/fhirsub/fhirstore"
)

// The benchmarks have the names and workload of fhirstore/sqlite's so that
// `make bench` can print them side by side. They run on the embedded
// FerretDB (or on MONGODB_TEST_URI's server when set): FerretDB uses no
// index for queries, so the figures say nothing about MongoDB itself.

// benchBackend is MONGODB_TEST_URI's server when set, else FerretDB.
func benchBackend(b *testing.B) backend {
	b.Helper()
	if b, ok := envMongo(); ok {
		return b
	}
	return ferretBackend()
}

// observation is a typical lab result, about 900 bytes stored (the same
// body as fhirstore/sqlite's benchmarks).
func observation(tb testing.TB, i int) map[string]any {
	tb.Helper()
	b, err := fhirstore.Decode(fmt.Appendf(nil, `{"resourceType":"Observation","status":"final",
		"category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory"}]}],
		"code":{"coding":[{"system":"http://loinc.org","code":"%d-4","display":"Test %d"}]},
		"subject":{"reference":"Patient/p%d"},"encounter":{"reference":"Encounter/e%d"},
		"effectiveDateTime":"2024-05-%02dT10:%02d:00Z","issued":"2024-05-%02dT11:00:00.000Z",
		"performer":[{"reference":"Practitioner/dr1"}],
		"valueQuantity":{"value":%d.5,"unit":"mmol/L","system":"http://unitsofmeasure.org","code":"mmol/L"},
		"interpretation":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation","code":"N"}]}],
		"referenceRange":[{"low":{"value":3.5,"unit":"mmol/L"},"high":{"value":5.5,"unit":"mmol/L"}}]}`,
		i%50, i%50, i%1000, i, i%28+1, i%60, i%28+1, i%10))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func benchOpen(b *testing.B) *DB {
	b.Helper()
	bk := benchBackend(b)
	b.Logf("backend=%s", bk.name)
	db := openTest(b, bk, Config{})
	b.Cleanup(func() { _ = db.Close() })
	return db
}

func BenchmarkCreate(b *testing.B) {
	b.Run("serial", func(b *testing.B) {
		db := benchOpen(b)
		ctx := context.Background()
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			if _, err := db.Create(ctx, observation(b, i)); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "creates/s")
	})
	b.Run("parallel", func(b *testing.B) {
		db := benchOpen(b)
		ctx := context.Background()
		b.ReportAllocs()
		b.SetParallelism(8) // 8×GOMAXPROCS goroutines, like concurrent HTTP requests
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				i++
				if _, err := db.Create(ctx, observation(b, i)); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "creates/s")
	})
}

// seeded opens a DB holding n observations. On FerretDB every query scans
// its collection, so loading 10,000 through Create would take minutes:
// the documents are built by the same code as a write (entry.build) and
// bulk-inserted instead, with their committed changes.
func seeded(b *testing.B, n int) (*fhirstore.Resource, *DB) {
	b.Helper()
	db := benchOpen(b)
	ctx := context.Background()
	at := fhirstore.Now()
	var first *fhirstore.Resource
	const batch = 500
	for i := 0; i < n; i += batch {
		var vs, rs, cs []any
		for j := i; j < min(n, i+batch); j++ {
			e, err := newEntry(fhirstore.Op{Method: fhirstore.MethodCreate, Body: observation(b, j)}, at)
			if err != nil {
				b.Fatal(err)
			}
			p, err := decide(e, state{})
			if err != nil {
				b.Fatal(err)
			}
			v, r, err := e.build(p)
			if err != nil {
				b.Fatal(err)
			}
			c := e.change(p, stateCommitted)
			c.Seq, v.Seq, r.Seq = int64(j+1), int64(j+1), int64(j+1)
			vs, rs, cs = append(vs, v), append(rs, r), append(cs, c)
			if first == nil {
				first = v.resource()
			}
		}
		for _, ins := range []struct {
			name string
			docs []any
			err  error
		}{
			{name: "changes", docs: cs}, {name: "versions", docs: vs}, {name: "resources", docs: rs},
		} {
			coll := map[string]func() error{
				"changes":   func() error { _, err := db.changes.InsertMany(ctx, ins.docs); return err },
				"versions":  func() error { _, err := db.versions.InsertMany(ctx, ins.docs); return err },
				"resources": func() error { _, err := db.resources.InsertMany(ctx, ins.docs); return err },
			}[ins.name]
			if err := coll(); err != nil {
				b.Fatalf("seed %s: %v", ins.name, err)
			}
		}
	}
	return first, db
}

func BenchmarkRead(b *testing.B) {
	first, db := seeded(b, 10_000)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := db.Read(ctx, "Observation", first.ID); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkSearchToken searches 10,000 observations for one subject (10
// matches) by reference and code token.
func BenchmarkSearchToken(b *testing.B) {
	_, db := seeded(b, 10_000)
	ctx := context.Background()
	q, err := search.Parse("Observation", url.Values{"subject": {"Patient/p7"}, "code": {"http://loinc.org|7-4"}})
	if err != nil {
		b.Fatal(err)
	}
	page, err := db.Search(ctx, q)
	if err != nil {
		b.Fatal(err)
	}
	if page.Total != 10 {
		b.Fatalf("search found %d, want 10", page.Total)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := db.Search(ctx, q); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRecord records one change matching 4 subscriptions (of 64) per
// op and reports events recorded per second (the workload of
// fhirstore/sqlite's). On FerretDB every query scans its collection, so
// the figure falls as events accumulate.
func BenchmarkRecord(b *testing.B) {
	db := benchOpen(b)
	ctx := context.Background()
	const perChange = 4
	matches := make([]fhirstore.Match, perChange)
	b.ReportAllocs()
	start := time.Now()
	var seq int64
	for b.Loop() {
		seq++
		for k := range matches {
			matches[k] = evMatch(fmt.Sprint("sub-", (seq*perChange+int64(k))%64), fmt.Sprint("o", seq))
		}
		if _, err := db.Record(ctx, "matcher", seq, evTime, matches); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(seq*perChange)/time.Since(start).Seconds(), "events/s")
}
