package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"testing"

	"github.com/fhirsub/fhirsub/conformance/search"
	"github.com/fhirsub/fhirsub/fhirstore"
)

// unfold puts search_keys back as migration 0003 left it: one row per
// key, filled from the keys each live resource lists.
const unfold = `
DROP TABLE search_keys;
CREATE TABLE search_keys (
	type  TEXT NOT NULL,
	param TEXT NOT NULL,
	value TEXT NOT NULL,
	id    TEXT NOT NULL,
	PRIMARY KEY (type, param, value, id)
) WITHOUT ROWID;
INSERT INTO search_keys (type, param, value, id)
SELECT r.type, json_extract(j.value, '$[0]'), json_extract(j.value, '$[1]'), r.id
FROM resources r, json_each(r.keys) j WHERE r.deleted = 0 AND r.keys IS NOT NULL;
PRAGMA user_version = 3;`

// TestMigrationFoldsKeys checks that migrations 0004 and 0005 fold the
// rows of an existing store as foldKeys folds each resource's keys, from
// the rows of version 3 (one per key) and from those of version 4 (tokens
// folded, one row per parameter), and that searches find the same
// resources before and after: on a parameter whose rows were folded into
// another's, and not on a parameter that only shares a value with another.
func TestMigrationFoldsKeys(t *testing.T) {
	for _, from := range []int{3, 4} {
		t.Run(fmt.Sprintf("from version %d", from), func(t *testing.T) { testMigrationFoldsKeys(t, from) })
	}
}

func testMigrationFoldsKeys(t *testing.T, from int) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "fhir.db")
	db := openForTest(t, path)
	bodies := []string{
		`{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"},{"code":"hr"}]},"subject":{"reference":"Patient/1"}}`,
		`{"resourceType":"Observation","status":"preliminary","code":{"coding":[{"system":"http://snomed.info/sct","code":"8867-4"}]},"subject":{"reference":"Patient/2"}}`,
		`{"resourceType":"Patient","identifier":[{"system":"urn:mrn","value":"a|b"},{"value":"b"}],"gender":"female"}`,
		`{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"1-1"}]}}`,
		`{"resourceType":"Patient","identifier":[{"value":"male"}],"gender":"female"}`,
	}
	ids := make([]string, len(bodies))
	for i, b := range bodies {
		body, err := fhirstore.Decode([]byte(b))
		if err != nil {
			t.Fatal(err)
		}
		res, err := db.Create(ctx, body)
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = res.ID
	}
	if _, err := db.Delete(ctx, "Observation", ids[3], fhirstore.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	searches := []struct {
		typ, param, value string
		want              []string
	}{
		{"Observation", "code", "8867-4", []string{ids[0], ids[1]}},
		{"Observation", "code", "http://loinc.org|8867-4", []string{ids[0]}},
		{"Observation", "code", "|hr", []string{ids[0]}},
		{"Observation", "code", "hr", []string{ids[0]}},
		{"Observation", "code", "http://loinc.org|1-1", nil},
		{"Observation", "status", "|final", []string{ids[0]}},
		{"Observation", "status", "final,preliminary", []string{ids[0], ids[1]}},
		{"Observation", "subject", "Patient/2", []string{ids[1]}},
		{"Patient", "identifier", `urn:mrn|a\|b`, []string{ids[2]}},
		{"Patient", "identifier", "b", []string{ids[2]}},
		{"Patient", "identifier", "urn:mrn|b", nil},
		{"Observation", "patient", "Patient/2", []string{ids[1]}},
		{"Observation", "combo-code", "8867-4", []string{ids[0], ids[1]}},
		{"Observation", "combo-code", "http://snomed.info/sct|8867-4", []string{ids[1]}},
		{"Patient", "gender", "female", []string{ids[2], ids[4]}},
		{"Patient", "gender", "male", nil},       // a row of "male" (an identifier) is no gender
		{"Patient", "identifier", "female", nil}, // nor one of "female" an identifier
		{"Patient", "identifier", "male", []string{ids[4]}},
	}
	check := func(when string) {
		t.Helper()
		if got, want := storedRows(t, db), expectedRows(t, db); !slices.Equal(got, want) {
			t.Errorf("%s: search_keys rows\n%v\nwant (foldKeys of each resource's keys)\n%v", when, got, want)
		}
		for _, s := range searches {
			q, err := search.Parse(s.typ, url.Values{s.param: {s.value}})
			if err != nil {
				t.Fatal(err)
			}
			page, err := db.Search(ctx, q)
			if err != nil {
				t.Fatalf("%s: search %s?%s=%s: %v", when, s.typ, s.param, s.value, err)
			}
			var got []string
			for _, r := range page.Resources {
				got = append(got, r.ID)
			}
			slices.Sort(got)
			want := slices.Sorted(slices.Values(s.want))
			if !slices.Equal(got, want) {
				t.Errorf("%s: %s?%s=%s found %v, want %v", when, s.typ, s.param, s.value, got, want)
			}
		}
	}
	check("written folded")

	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(unfold); err != nil {
		t.Fatal(err)
	}
	if from == 4 {
		script, err := migrations.ReadFile("migrations/0004_folded_keys.sql")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := raw.Exec(string(script) + "; PRAGMA user_version = 4;"); err != nil {
			t.Fatal(err)
		}
	}
	var n int
	if err := raw.QueryRow(`SELECT count(*) FROM search_keys`).Scan(&n); err != nil || n < 10 {
		t.Fatalf("unfolded table has %d rows (%v), want the keys of the live resources", n, err)
	}
	_ = raw.Close()

	db = openForTest(t, path)
	check("migrated")
}

func openForTest(t *testing.T, path string) *DB {
	t.Helper()
	db, err := Open(context.Background(), Config{Path: path})
	if err != nil {
		t.Fatalf("Open %s: %v", path, err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// storedRows lists search_keys as "type id param value sys", sorted.
func storedRows(t *testing.T, db *DB) []string {
	t.Helper()
	rows, err := db.reader.Query(`SELECT type, id, param, value, sys FROM search_keys`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var typ, id string
		var r keyRow
		if err := rows.Scan(&typ, &id, &r.param, &r.value, &r.sys); err != nil {
			t.Fatal(err)
		}
		out = append(out, typ+" "+id+" "+r.param+" "+r.value+" "+r.sys)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// expectedRows lists what foldKeys makes of each live resource's keys, in
// storedRows' form.
func expectedRows(t *testing.T, db *DB) []string {
	t.Helper()
	rows, err := db.reader.Query(`SELECT type, id, keys FROM resources WHERE deleted = 0 AND keys IS NOT NULL`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var typ, id, enc string
		if err := rows.Scan(&typ, &id, &enc); err != nil {
			t.Fatal(err)
		}
		keys, err := decodeKeys(enc)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range foldKeys(keys) {
			out = append(out, typ+" "+id+" "+r.param+" "+r.value+" "+r.sys)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}
