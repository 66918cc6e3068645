package schema

import (
	"regexp"
	"testing"
)

// TestFastPatternsAgreeWithRegexp checks the hand-written matchers against
// Go's regexp on tricky inputs.
func TestFastPatternsAgreeWithRegexp(t *testing.T) {
	inputs := []string{"", " ", "a", " a", "a ", "a b", "a  b", "a\tb", "a\t\tb", "a\fb", "\f", "a\nb",
		"x\r\n", "ü ñ", "\u00a0", "a\u2003b", "http://x/y?z=1", "with space", "tab\t", "\n",
		"aGVsbG8=", "aGVs bG8=", "aGV sbG8=", " aGVs\r\nbG8= ", "aGVsbG", "a+/=", "a-_=", "aGVs\vbG8=", "====", "aGVsbG8=\n\n"}
	for p, fast := range fastPatterns {
		re := regexp.MustCompile(p)
		for _, in := range inputs {
			if got, want := fast(in), re.MatchString(in); got != want {
				t.Errorf("pattern %q on %q: fast %v, regexp %v", p, in, got, want)
			}
		}
	}
}

func FuzzFastPatterns(f *testing.F) {
	for _, s := range []string{"", "a b", "a  b", "\f", " x", "x ", "http://e.org/a b", "é\t", "aGVs bG8=", "aGVsbG"} {
		f.Add(s)
	}
	res := map[string]*regexp.Regexp{}
	for p := range fastPatterns {
		res[p] = regexp.MustCompile(p)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for p, fast := range fastPatterns {
			if got, want := fast(s), res[p].MatchString(s); got != want {
				t.Errorf("pattern %q on %q: fast %v, regexp %v", p, s, got, want)
			}
		}
	})
}
