package schema

import (
	"fmt"
	"regexp"
	"strconv"
	"time"
)

// dayTypes are the primitive types whose values may name a day. Their
// patterns allow a 31st of every month and a 29th of every February; a
// value must also name a day of the calendar (FHIR: "Dates SHALL be valid
// dates").
var dayTypes = map[string]bool{"date": true, "dateTime": true, "instant": true}

// noSuchDay says why s, a value that matches the pattern of a day type,
// names a day the calendar does not have, or is "" when the day exists or
// s names none (a year, or a year and month).
func noSuchDay(s string) string {
	if len(s) < len("2006-01-02") {
		return ""
	}
	y, errY := strconv.Atoi(s[0:4])
	m, errM := strconv.Atoi(s[5:7])
	d, errD := strconv.Atoi(s[8:10])
	if errY != nil || errM != nil || errD != nil || m < 1 || m > 12 {
		return "" // the pattern decides
	}
	// day 0 of the next month is the last of this one
	if n := time.Date(y, time.Month(m)+1, 0, 0, 0, 0, 0, time.UTC).Day(); d > n {
		return fmt.Sprintf("%s has %d days", s[:7], n)
	}
	return ""
}

// dayPattern matches a day type's pattern and then the calendar.
func dayPattern(pattern string) (fastRegexp, error) {
	re, err := regexp.Compile(pattern)
	if err != nil {
		return fastRegexp{}, err
	}
	return fastRegexp{pattern: pattern, match: func(s string) bool {
		return re.MatchString(s) && noSuchDay(s) == ""
	}}, nil
}

// patternOnly reports whether s matches pattern by itself: a value of a
// day type refused for its calendar day only.
func patternOnly(pattern, s string) bool {
	re, err := regexp.Compile(pattern)
	return err == nil && re.MatchString(s)
}
