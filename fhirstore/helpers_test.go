package fhirstore_test

import (
	"errors"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fhirsub/fhirsub/fhirstore"
)

func TestNewIDIsValid(t *testing.T) {
	re := regexp.MustCompile(`^[A-Za-z0-9\-\.]{1,64}$`)
	seen := map[string]bool{}
	for range 1000 {
		id := fhirstore.NewID()
		if !re.MatchString(id) || !fhirstore.ValidID(id) {
			t.Fatalf("NewID() = %q, not a valid id", id)
		}
		if seen[id] {
			t.Fatalf("NewID() repeated %q", id)
		}
		seen[id] = true
	}
}

func TestValidID(t *testing.T) {
	tests := []struct {
		id   string
		want bool
	}{
		{"a", true},
		{"Patient-1.2", true},
		{strings.Repeat("x", 64), true},
		{strings.Repeat("x", 65), false},
		{"", false},
		{"a b", false},
		{"a/b", false},
		{"a_b", false},
		{"é", false},
	}
	for _, tc := range tests {
		if got := fhirstore.ValidID(tc.id); got != tc.want {
			t.Errorf("ValidID(%q) = %v, want %v", tc.id, got, tc.want)
		}
	}
}

func TestResourceType(t *testing.T) {
	if typ, err := fhirstore.ResourceType(map[string]any{"resourceType": "Patient"}); err != nil || typ != "Patient" {
		t.Fatalf("ResourceType = %q, %v", typ, err)
	}
	for _, body := range []map[string]any{nil, {}, {"resourceType": 3}, {"resourceType": "patient"}, {"resourceType": "Pa tient"}} {
		if _, err := fhirstore.ResourceType(body); !errors.Is(err, fhirstore.ErrInvalid) {
			t.Errorf("ResourceType(%v) error = %v, want ErrInvalid", body, err)
		}
	}
}

func TestStampAndEncode(t *testing.T) {
	body, err := fhirstore.Decode([]byte(`{"status":"final","resourceType":"Observation","id":"old",` +
		`"meta":{"profile":["http://x/p"],"versionId":"9"},"valueQuantity":{"value":1.50000000000000000001},"note":[{"text":"<b>&</b>"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	when := time.Date(2024, 3, 4, 5, 6, 7, 891_234_567, time.FixedZone("x", 3600))
	if err := fhirstore.Stamp(body, "new-id", "3", when); err != nil {
		t.Fatal(err)
	}
	got, err := fhirstore.Encode(body)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"resourceType":"Observation","id":"new-id","meta":{"lastUpdated":"2024-03-04T04:06:07.891Z",` +
		`"profile":["http://x/p"],"versionId":"3"},"note":[{"text":"<b>&</b>"}],"status":"final",` +
		`"valueQuantity":{"value":1.50000000000000000001}}`
	if string(got) != want {
		t.Fatalf("Encode =\n%s\nwant\n%s", got, want)
	}
	only, err := fhirstore.Encode(map[string]any{"resourceType": "Basic"})
	if err != nil || string(only) != `{"resourceType":"Basic"}` {
		t.Fatalf("Encode(type only) = %s, %v", only, err)
	}
	if err := fhirstore.Stamp(map[string]any{"meta": "x"}, "a", "1", when); !errors.Is(err, fhirstore.ErrInvalid) {
		t.Fatalf("Stamp(meta string) error = %v, want ErrInvalid", err)
	}
	if err := fhirstore.Stamp(map[string]any{}, "a b", "1", when); !errors.Is(err, fhirstore.ErrInvalid) {
		t.Fatalf("Stamp(bad id) error = %v, want ErrInvalid", err)
	}
}

func TestDecodeRejectsBadInput(t *testing.T) {
	for _, in := range []string{``, `null`, `[]`, `{"a":1}{}`, `{"a":`, `"x"`} {
		if _, err := fhirstore.Decode([]byte(in)); err == nil {
			t.Errorf("Decode(%q) accepted bad input", in)
		}
	}
}

func TestPageBounds(t *testing.T) {
	tests := []struct{ total, count, offset, lo, hi int }{
		{0, 0, 0, 0, 0},
		{120, 0, 0, 0, 50},
		{120, 0, 100, 100, 120},
		{120, 10, 115, 115, 120},
		{120, 10, 500, 120, 120},
		{5000, 5000, 0, 0, fhirstore.MaxCount},
		{10, 3, -4, 0, 3},
	}
	for _, tc := range tests {
		lo, hi := fhirstore.PageBounds(tc.total, tc.count, tc.offset)
		if lo != tc.lo || hi != tc.hi {
			t.Errorf("PageBounds(%d, %d, %d) = %d, %d; want %d, %d", tc.total, tc.count, tc.offset, lo, hi, tc.lo, tc.hi)
		}
	}
}

func TestNotifierWakesAllWaiters(t *testing.T) {
	n := fhirstore.NewNotifier()
	const waiters = 10
	var ready, done sync.WaitGroup
	for range waiters {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			ch := n.C()
			ready.Done()
			<-ch
		}()
	}
	ready.Wait()
	n.Notify()
	done.Wait()
	select {
	case <-n.C():
		t.Fatal("channel after Notify is already closed")
	default:
	}
}
