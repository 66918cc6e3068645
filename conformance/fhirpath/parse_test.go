package fhirpath

import (
	"errors"
	"strings"
	"testing"

	"github.com/fhirsub/fhirsub/conformance/definitions"
)

func TestParseSearchParameterExpressions(t *testing.T) {
	n := 0
	for _, sp := range definitions.AllSearchParams() {
		if sp.Expression == "" {
			continue
		}
		e, err := Parse(sp.Expression)
		if err != nil {
			t.Errorf("%s (%v): %v", sp.Code, sp.Base, err)
			continue
		}
		// the canonical form parses back to the same tree
		again, err := Parse(e.canonical())
		if err != nil || again.canonical() != e.canonical() {
			t.Errorf("%s: canonical form %q does not round-trip: %v", sp.Code, e.canonical(), err)
		}
		n++
	}
	t.Logf("parsed %d search-parameter expressions", n)
	if n < 1375 {
		t.Errorf("parsed %d search-parameter expressions, want at least 1375", n)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, src, want string
		col             int
	}{
		{"empty", "", "unexpected end of expression", 1},
		{"unclosed paren", "(Patient.name", "expected ')'", 14},
		{"unknown function", "Patient.name.frobnicate()", "unknown function frobnicate()", 14},
		{"arity", "Patient.name.where()", "where() takes 1 argument(s), got 0", 14},
		{"dangling dot", "Patient.", "expected a name after '.'", 9},
		{"bad char", "Patient # name", "unexpected character '#'", 9},
		{"unterminated string", "name = 'abc", "unterminated '-quoted text", 8},
		{"bad escape", `'a\qb'`, `invalid escape sequence \q`, 3},
		{"bad date", "@2024-13-01", "invalid date/time literal", 1},
		{"trailing", "Patient.name name", "unexpected 'name' after the end", 14},
		{"bad special", "$thus", "unknown special variable $thus", 1},
		{"type expected", "value is 5", "expected a type name", 10},
		{"operator only", "and", "", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.src)
			if tc.name == "operator only" {
				// 'and' is an identifier at the start of a path: valid
				if err != nil {
					t.Fatalf("Parse(%q): %v", tc.src, err)
				}
				return
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("Parse(%q) error = %v, want a *ParseError", tc.src, err)
			}
			if !strings.Contains(pe.Msg, tc.want) || pe.Pos+1 != tc.col {
				t.Errorf("Parse(%q) = %q at column %d, want %q at column %d", tc.src, pe.Msg, pe.Pos+1, tc.want, tc.col)
			}
		})
	}
}

func TestParseDepthLimit(t *testing.T) {
	src := strings.Repeat("(", 300) + "1" + strings.Repeat(")", 300)
	if _, err := Parse(src); err == nil || !strings.Contains(err.Error(), "nested too deeply") {
		t.Errorf("Parse(300 parentheses) error = %v, want nesting error", err)
	}
	long := "Patient" + strings.Repeat(".name", 1200)
	if _, err := Parse(long); err == nil {
		t.Errorf("Parse(1200-step path) succeeded, want a depth error")
	}
}

func TestMustParsePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("MustParse(\"(\") did not panic")
		}
	}()
	MustParse("(")
}
