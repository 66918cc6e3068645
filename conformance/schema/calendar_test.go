package schema_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/fhirsub/fhirsub/conformance/schema"
)

// wantIssue validates body and checks that it gives one issue, at path,
// whose message holds msg; with msg "", that body is valid.
func wantIssue(t *testing.T, body, path, msg string) {
	t.Helper()
	err := schema.Validate(decode(t, body))
	if msg == "" {
		if err != nil {
			t.Errorf("%s: %v", body, err)
		}
		return
	}
	var se *schema.Error
	if !errors.As(err, &se) || len(se.Issues) != 1 {
		t.Errorf("%s: err = %v; want one issue", body, err)
		return
	}
	if is := se.Issues[0]; is.Path != path || !strings.Contains(is.Message, msg) {
		t.Errorf("%s: issue %s: %s; want %s: …%s…", body, is.Path, is.Message, path, msg)
	}
}

// TestCalendarDays: the patterns of date, dateTime and instant allow a
// 30th of February; such a value is refused with a message that names
// the month's length, and every day that exists passes.
func TestCalendarDays(t *testing.T) {
	for _, c := range []struct {
		body, path, msg string // msg "" = valid
	}{
		{`{"resourceType":"Patient","birthDate":"2020-02-30"}`, "Patient.birthDate", `"2020-02-30" is not a day of the calendar (2020-02 has 29 days)`},
		{`{"resourceType":"Patient","birthDate":"2021-02-29"}`, "Patient.birthDate", `"2021-02-29" is not a day of the calendar (2021-02 has 28 days)`},
		{`{"resourceType":"Patient","birthDate":"1900-02-29"}`, "Patient.birthDate", `(1900-02 has 28 days)`},
		{`{"resourceType":"Patient","deceasedDateTime":"2021-04-31T10:00:00Z"}`, "Patient.deceasedDateTime", `(2021-04 has 30 days)`},
		{`{"resourceType":"Observation","status":"final","code":{"text":"x"},"issued":"2023-06-31T00:00:00.000Z"}`, "Observation.issued", `(2023-06 has 30 days)`},
		{`{"resourceType":"Patient","birthDate":"2021-02-30T"}`, "Patient.birthDate", `does not match the date pattern`},
		{`{"resourceType":"Patient","birthDate":"2000-02-29"}`, "", ""},
		{`{"resourceType":"Patient","birthDate":"2024-02-29"}`, "", ""},
		{`{"resourceType":"Patient","birthDate":"2021-02"}`, "", ""},
		{`{"resourceType":"Patient","birthDate":"2021"}`, "", ""},
		{`{"resourceType":"Patient","birthDate":"2021-12-31"}`, "", ""},
		{`{"resourceType":"Patient","deceasedDateTime":"2021-04-30T23:59:60Z"}`, "", ""}, // a leap second: the pattern allows it
		{`{"resourceType":"Patient","deceasedDateTime":"2021-01-31T10:00:00+14:00"}`, "", ""},
	} {
		wantIssue(t, c.body, c.path, c.msg)
	}
}
