package web_test

import (
	"fmt"
	"strings"
	"testing"
)

// TestSearchLimits: the largest search within the limits is answered by
// the store, and one past each limit is a 400 naming it (never a 500).
func TestSearchLimits(t *testing.T) {
	s := mustServer(t)
	codes := func(n int) string {
		var b strings.Builder
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "http://loinc.org|%d-1", i)
		}
		return b.String()
	}
	ids := func(n int) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, "&_id=x%d", i)
		}
		return b.String()
	}
	// 100 parameters of 100 OR values each: the worst case within limits.
	var worst strings.Builder
	for range 100 {
		worst.WriteString("&code=" + codes(100))
	}
	for _, c := range []struct {
		name, query string
		want        int
		says        string
	}{
		{"100 OR values", "code=" + codes(100), 200, ""},
		{"101 OR values", "code=" + codes(101), 400, "OR values per parameter is 100"},
		{"501 OR values", "code=" + codes(501), 400, "OR values per parameter is 100"},
		{"100 parameters", strings.TrimPrefix(ids(100), "&"), 200, ""},
		{"101 parameters", strings.TrimPrefix(ids(101), "&"), 400, "parameters per search"},
		{"1000 _id parameters", strings.TrimPrefix(ids(1000), "&"), 400, "parameters per search"},
		{"100x100 values", strings.TrimPrefix(worst.String(), "&"), 200, ""},
	} {
		r := s.do("POST", "/Observation/_search", c.query, "Content-Type", "application/x-www-form-urlencoded")
		if r.Status != c.want || !strings.Contains(string(r.Body), c.says) {
			t.Errorf("%s: %d %.300s, want %d saying %q", c.name, r.Status, r.Body, c.want, c.says)
		}
	}
}
