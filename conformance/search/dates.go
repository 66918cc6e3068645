package search

import (
	"errors"
	"math"
	"time"
)

// span is a half-open time range [lo, hi) in microseconds since the Unix
// epoch. math.MinInt64 and math.MaxInt64 stand for open ends.
type span struct {
	lo, hi int64
}

const (
	minTime = math.MinInt64
	maxTime = math.MaxInt64
)

var errBadDate = errors.New("not a FHIR date, dateTime or instant (YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm[:ss[.f]][Z|±hh:mm])")

// parseSpan parses a FHIR date, dateTime or instant (and the minute
// precision allowed in search values) into the range its precision covers.
// Values without a time zone are read as UTC.
func parseSpan(s string) (span, error) {
	p := dateParser{s: s}
	year, ok := p.digits(4)
	if !ok || year < 1 {
		return span{}, errBadDate
	}
	if p.done() {
		return spanOf(time.Date(year, 1, 1, 0, 0, 0, 0, time.UTC), 1, 0), nil
	}
	month, ok := p.sepDigits('-', 2)
	if !ok || month < 1 || month > 12 {
		return span{}, errBadDate
	}
	if p.done() {
		return spanOf(time.Date(year, time.Month(month), 1, 0, 0, 0, 0, time.UTC), 0, 1), nil
	}
	day, ok := p.sepDigits('-', 2)
	if !ok || day < 1 || day > daysIn(year, month) {
		return span{}, errBadDate
	}
	if p.done() {
		t := time.Date(year, time.Month(month), day, 0, 0, 0, 0, time.UTC)
		return span{lo: micros(t), hi: micros(t.AddDate(0, 0, 1))}, nil
	}
	hour, ok := p.sepDigits('T', 2)
	if !ok || hour > 23 {
		return span{}, errBadDate
	}
	minute, ok := p.sepDigits(':', 2)
	if !ok || minute > 59 {
		return span{}, errBadDate
	}
	sec, nanos, width := 0, 0, time.Minute
	if p.peek() == ':' {
		if sec, ok = p.sepDigits(':', 2); !ok || sec > 59 {
			return span{}, errBadDate
		}
		width = time.Second
		if p.peek() == '.' {
			p.i++
			n := 0
			for p.i < len(p.s) && isDigit(p.s[p.i]) {
				if n < 9 {
					nanos = nanos*10 + int(p.s[p.i]-'0')
					width /= 10
				}
				n++
				p.i++
			}
			if n == 0 {
				return span{}, errBadDate
			}
			for k := n; k < 9; k++ {
				nanos *= 10
			}
			width = max(width, time.Microsecond)
		}
	}
	loc, ok := p.zone()
	if !ok || !p.done() {
		return span{}, errBadDate
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, nanos, loc)
	return span{lo: micros(t), hi: micros(t.Add(width))}, nil
}

func spanOf(t time.Time, years, months int) span {
	return span{lo: micros(t), hi: micros(t.AddDate(years, months, 0))}
}

func micros(t time.Time) int64 {
	return t.Unix()*1e6 + int64(t.Nanosecond()/1e3)
}

func daysIn(year, month int) int {
	return time.Date(year, time.Month(month)+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

type dateParser struct {
	s string
	i int
}

func (p *dateParser) done() bool { return p.i == len(p.s) }

func (p *dateParser) peek() byte {
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

func (p *dateParser) digits(n int) (int, bool) {
	if p.i+n > len(p.s) {
		return 0, false
	}
	v := 0
	for k := 0; k < n; k++ {
		c := p.s[p.i+k]
		if !isDigit(c) {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	p.i += n
	return v, true
}

func (p *dateParser) sepDigits(sep byte, n int) (int, bool) {
	if p.peek() != sep {
		return 0, false
	}
	p.i++
	return p.digits(n)
}

// zone reads "Z", "±hh:mm" or nothing (UTC).
func (p *dateParser) zone() (*time.Location, bool) {
	switch p.peek() {
	case 0:
		return time.UTC, true
	case 'Z':
		p.i++
		return time.UTC, true
	case '+', '-':
		sign := 1
		if p.s[p.i] == '-' {
			sign = -1
		}
		p.i++
		h, ok := p.digits(2)
		if !ok || h > 14 {
			return nil, false
		}
		m, ok := p.sepDigits(':', 2)
		if !ok || m > 59 {
			return nil, false
		}
		return time.FixedZone("", sign*(h*3600+m*60)), true
	}
	return nil, false
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// matchSpan applies a search prefix to a resource range r and a search
// range s, following the R4 "prefix" table for ranges.
func matchSpan(prefix string, r, s span) bool {
	overlap := r.lo < s.hi && s.lo < r.hi
	contains := s.lo <= r.lo && r.hi <= s.hi
	switch prefix {
	case "", "eq":
		return contains
	case "ne":
		return !contains
	case "gt":
		return r.hi > s.hi
	case "lt":
		return r.lo < s.lo
	case "ge":
		return r.hi > s.hi || contains
	case "le":
		return r.lo < s.lo || contains
	case "sa":
		return !overlap && r.lo >= s.hi
	case "eb":
		return !overlap && r.hi <= s.lo
	case "ap":
		return overlap || approxSpan(s).overlaps(r)
	}
	return false
}

func (a span) overlaps(b span) bool { return a.lo < b.hi && b.lo < a.hi }

// approxSpan widens s by 10% of its distance to now on each side, the
// "approximately" rule of the R4 specification, and by at least one day.
func approxSpan(s span) span {
	now := micros(time.Now())
	gap := now - s.lo
	if gap < 0 {
		gap = -gap
	}
	w := max(gap/10, 24*3600*1e6)
	out := s
	if out.lo != minTime {
		out.lo = satAdd(out.lo, -w)
	}
	if out.hi != maxTime {
		out.hi = satAdd(out.hi, w)
	}
	return out
}

func satAdd(a, b int64) int64 {
	c := a + b
	if (b > 0 && c < a) || (b < 0 && c > a) {
		if b > 0 {
			return maxTime
		}
		return minTime
	}
	return c
}

// Period returns the time range [from, to) a FHIR date, dateTime or
// instant covers at its precision (2024 is the year 2024; a value without
// a time zone is read as UTC), as history's _at reads it.
func Period(s string) (from, to time.Time, err error) {
	sp, err := parseSpan(s)
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	return time.UnixMicro(sp.lo).UTC(), time.UnixMicro(sp.hi).UTC(), nil
}
