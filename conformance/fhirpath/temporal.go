package fhirpath

import (
	"strconv"
	"strings"
	"time"
)

// TemporalKind tells a Date, a DateTime and a Time apart.
type TemporalKind uint8

// The kinds of Temporal values.
const (
	KindDate TemporalKind = iota + 1
	KindDateTime
	KindTime
)

// Precision steps of a Temporal value.
const (
	precYear = iota + 1
	precMonth
	precDay
	precHour
	precMinute
	precSecond // seconds and fractions are one precision for comparison
)

// Temporal is a FHIRPath System.Date, System.DateTime or System.Time value.
// It keeps the precision it was written with: @2024 is a year, not
// 2024-01-01. Its String method gives the FHIR text form.
type Temporal struct {
	Kind   TemporalKind
	Year   int
	Month  int
	Day    int
	Hour   int
	Minute int
	Second int
	Nano   int
	// Prec is the number of components given: 1 = year ... 6 = seconds
	// (a time starts at 4 = hour).
	Prec int
	// HasTZ reports whether a time zone was given; TZ is its offset in
	// minutes east of UTC.
	HasTZ bool
	TZ    int
	text  string
}

// String returns the FHIR text form ("2024-01-01", "10:00:00",
// "2024-01-01T10:00:00Z").
func (t Temporal) String() string {
	if t.Kind == KindTime {
		return strings.TrimPrefix(t.text, "T")
	}
	return t.text
}

// literal returns the text of the FHIRPath literal without '@'.
func (t Temporal) literal() string { return t.text }

// typeName returns the System type name of the value.
func (t Temporal) typeName() string {
	switch t.Kind {
	case KindDate:
		return TypeDate
	case KindTime:
		return TypeTime
	}
	return TypeDateTime
}

func atoiN(s string, n int) (int, bool) {
	if len(s) < n {
		return 0, false
	}
	v := 0
	for i := 0; i < n; i++ {
		if !isDigit(s[i]) {
			return 0, false
		}
		v = v*10 + int(s[i]-'0')
	}
	return v, true
}

// parseTemporal parses a date, dateTime, instant or time text (FHIR JSON
// form, or a FHIRPath literal without '@'; a time literal starts with 'T').
// A text with a date and no time part is a Date unless forceDateTime.
func parseTemporal(s string, forceDateTime bool) (Temporal, bool) {
	t := Temporal{text: s}
	rest := s
	isTime := strings.HasPrefix(s, "T")
	if !isTime && len(s) >= 3 && s[2] == ':' {
		// FHIR time text ("10:00:00") has no leading 'T'
		isTime = true
		rest = "T" + s
		t.text = rest
	}
	if isTime {
		t.Kind = KindTime
		rest = rest[1:]
		var ok bool
		if rest, ok = t.parseClock(rest); !ok || rest != "" {
			return Temporal{}, false
		}
		return t, true
	}
	var ok bool
	if t.Year, ok = atoiN(rest, 4); !ok {
		return Temporal{}, false
	}
	t.Prec, rest = precYear, rest[4:]
	if strings.HasPrefix(rest, "-") {
		if t.Month, ok = atoiN(rest[1:], 2); !ok || t.Month < 1 || t.Month > 12 {
			return Temporal{}, false
		}
		t.Prec, rest = precMonth, rest[3:]
		if strings.HasPrefix(rest, "-") {
			if t.Day, ok = atoiN(rest[1:], 2); !ok || t.Day < 1 || t.Day > daysIn(t.Year, t.Month) {
				return Temporal{}, false
			}
			t.Prec, rest = precDay, rest[3:]
		}
	}
	t.Kind = KindDate
	if forceDateTime {
		t.Kind = KindDateTime
	}
	if strings.HasPrefix(rest, "T") {
		t.Kind = KindDateTime
		rest = rest[1:]
		if rest != "" {
			if t.Prec != precDay {
				return Temporal{}, false
			}
			if rest, ok = t.parseClock(rest); !ok {
				return Temporal{}, false
			}
		}
	}
	if rest != "" {
		if t.Prec < precHour && rest != "Z" {
			// a zone on a partial date is only accepted as FHIR does: never
			return Temporal{}, false
		}
		if rest == "Z" {
			t.HasTZ = true
		} else {
			if len(rest) != 6 || (rest[0] != '+' && rest[0] != '-') || rest[3] != ':' {
				return Temporal{}, false
			}
			h, ok1 := atoiN(rest[1:], 2)
			m, ok2 := atoiN(rest[4:], 2)
			if !ok1 || !ok2 || h > 14 || m > 59 {
				return Temporal{}, false
			}
			t.HasTZ, t.TZ = true, h*60+m
			if rest[0] == '-' {
				t.TZ = -t.TZ
			}
		}
	}
	return t, true
}

// parseClock parses hh[:mm[:ss[.fff]]] and returns what follows.
func (t *Temporal) parseClock(s string) (string, bool) {
	var ok bool
	if t.Hour, ok = atoiN(s, 2); !ok || t.Hour > 23 {
		return s, false
	}
	t.Prec, s = precHour, s[2:]
	if !strings.HasPrefix(s, ":") {
		return s, true
	}
	if t.Minute, ok = atoiN(s[1:], 2); !ok || t.Minute > 59 {
		return s, false
	}
	t.Prec, s = precMinute, s[3:]
	if !strings.HasPrefix(s, ":") {
		return s, true
	}
	if t.Second, ok = atoiN(s[1:], 2); !ok || t.Second > 60 {
		return s, false
	}
	t.Prec, s = precSecond, s[3:]
	if strings.HasPrefix(s, ".") {
		i := 1
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		if i == 1 {
			return s, false
		}
		frac := s[1:i]
		if len(frac) > 9 {
			frac = frac[:9]
		}
		n, _ := strconv.Atoi(frac + strings.Repeat("0", 9-len(frac)))
		t.Nano, s = n, s[i:]
	}
	return s, true
}

func daysIn(year, month int) int {
	return time.Date(year, time.Month(month)+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// fields returns the components to compare, normalised to UTC when the
// value has a time of day and a zone.
func (t Temporal) fields() [6]int64 {
	y, mo, d, h, mi := t.Year, t.Month, t.Day, t.Hour, t.Minute
	if t.HasTZ && t.Prec >= precHour && t.Kind != KindTime {
		u := time.Date(y, time.Month(mo), d, h, mi, 0, 0, time.UTC).Add(-time.Duration(t.TZ) * time.Minute)
		y, mo, d, h, mi = u.Year(), int(u.Month()), u.Day(), u.Hour(), u.Minute()
	}
	return [6]int64{int64(y), int64(mo), int64(d), int64(h), int64(mi), int64(t.Second)*1e9 + int64(t.Nano)}
}

// compareTemporal compares a and b. ok is false when the answer is unknown
// because the values have different precisions and agree as far as both go,
// or when a time is compared with a date.
func compareTemporal(a, b Temporal) (cmp int, ok bool) {
	if (a.Kind == KindTime) != (b.Kind == KindTime) {
		return 0, false
	}
	fa, fb := a.fields(), b.fields()
	first := 0
	if a.Kind == KindTime {
		first = precHour - 1
	}
	n := min(a.Prec, b.Prec)
	for i := first; i < n; i++ {
		switch {
		case fa[i] < fb[i]:
			return -1, true
		case fa[i] > fb[i]:
			return 1, true
		}
	}
	if a.Prec != b.Prec {
		return 0, false
	}
	return 0, true
}
