package web

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/fhirsub/fhirsub/conformance/search"
	"github.com/fhirsub/fhirsub/fhirstore"
)

// preference is the value of one preference of the request's Prefer
// headers ("" when absent). Preferences are separated by commas (RFC
// 7240); a semicolon is taken as a separator too, as clients write
// "return=minimal; handling=lenient".
func preference(h http.Header, name string) string {
	for _, line := range h.Values("Prefer") {
		for _, pref := range strings.Split(line, ",") {
			for _, part := range strings.Split(pref, ";") {
				k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
				if strings.EqualFold(strings.TrimSpace(k), name) {
					return strings.Trim(strings.TrimSpace(v), `"`)
				}
			}
		}
	}
	return ""
}

// lenientSearch reports whether the client asked that parameters the
// server does not know or support be ignored (Prefer: handling=lenient);
// by default, and with handling=strict, they are refused.
func lenientSearch(h http.Header) bool {
	return strings.EqualFold(preference(h, "handling"), "lenient")
}

// parseSearch parses a search. With lenient, each parameter whose name,
// chain or modifier the server does not know or support is removed from
// params (so the Bundle's links show what was used) and returned with why,
// instead of refusing the search; a bad value of a known parameter is
// refused either way.
func parseSearch(t string, params url.Values, lenient bool) (*search.Query, []*search.Error, error) {
	var ignored []*search.Error
	for {
		q, err := search.Parse(t, params)
		var se *search.Error
		if err == nil || !lenient || !errors.As(err, &se) || !se.Unsupported || !params.Has(se.Param) {
			return q, ignored, err
		}
		params.Del(se.Param)
		ignored = append(ignored, se)
	}
}

// withIgnored adds to a searchset, after its resources, the entry that
// names the parameters a lenient search ignored, if any.
func withIgnored(b *bundle, ignored []*search.Error) (*bundle, error) {
	if len(ignored) == 0 {
		return b, nil
	}
	e, err := ignoredEntry(ignored)
	if err != nil {
		return nil, err
	}
	b.Entry = append(b.Entry, e)
	return b, nil
}

// ignoredEntry is the searchset entry (search.mode outcome) that tells
// the client which parameters a lenient search ignored.
func ignoredEntry(ignored []*search.Error) (bundleEntry, error) {
	oo := operationOutcome{ResourceType: "OperationOutcome"}
	for _, se := range ignored {
		oo.Issue = append(oo.Issue, issue{Severity: "warning", Code: "not-supported",
			Diagnostics: se.Error() + ": ignored (Prefer: handling=lenient)", Expression: []string{se.Param}})
	}
	body, err := fhirstore.EncodeJSON(oo)
	if err != nil {
		return bundleEntry{}, err
	}
	return bundleEntry{Resource: body, Search: &entrySearch{Mode: "outcome"}}, nil
}
