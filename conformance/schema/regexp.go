package schema

import (
	"regexp"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// The HL7 schema's patterns are all RE2 (checked by the generator). The
// three that apply to nearly every string are matched by hand, which makes
// validation about a quarter faster; the rest use Go's regexp.
var fastPatterns = map[string]func(string) bool{
	// string, markdown: [ \r\n\t\S] is every character but form feed.
	`^[ \r\n\t\S]+$`: func(s string) bool { return s != "" && !strings.ContainsRune(s, '\f') },
	// uri, url, canonical: no whitespace.
	`^\S*$`: func(s string) bool { return !strings.ContainsAny(s, " \t\n\f\r") },
	// code: non-empty, single inner spaces only.
	`^[^\s]+(\s[^\s]+)*$`: matchCode,
	// base64Binary: groups of four, white space between groups (an
	// attachment's data may be megabytes).
	`^(\s*([0-9a-zA-Z\+/=]){4}\s*)+$`: matchBase64,
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r' }

func matchCode(s string) bool {
	if s == "" || isSpace(s[0]) || isSpace(s[len(s)-1]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if isSpace(s[i]) && isSpace(s[i-1]) {
			return false
		}
	}
	return true
}

func isBase64(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '='
}

// matchBase64 is base64Binary's pattern: groups of four base64 characters
// with RE2's white space (isSpace) between them.
func matchBase64(s string) bool {
	groups, i := 0, 0
	for {
		for i < len(s) && isSpace(s[i]) {
			i++
		}
		if i == len(s) {
			return groups > 0
		}
		if i+4 > len(s) || !isBase64(s[i]) || !isBase64(s[i+1]) || !isBase64(s[i+2]) || !isBase64(s[i+3]) {
			return false
		}
		i += 4
		groups++
	}
}

type fastRegexp struct {
	pattern string
	match   func(string) bool
}

func (r fastRegexp) String() string { return r.pattern }

func (r fastRegexp) MatchString(s string) bool { return r.match(s) }

func compileRegexp(pattern string) (jsonschema.Regexp, error) {
	if m, ok := fastPatterns[pattern]; ok {
		return fastRegexp{pattern: pattern, match: m}, nil
	}
	if dayTypes[patternTypes[pattern]] {
		return dayPattern(pattern)
	}
	return regexp.Compile(pattern)
}
