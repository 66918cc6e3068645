package fhirpath

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

type tokenKind int

const (
	tokEOF tokenKind = iota
	tokIdent
	tokDelimIdent // `identifier`
	tokString
	tokNumber
	tokDate // @... literal, text without the '@'
	tokExternal
	tokSpecial // $this, $index, $total
	tokPunct
)

type token struct {
	kind tokenKind
	text string // identifier name, decoded string, number text, punctuation
	pos  int    // byte offset in the source
}

// ParseError is a syntax error in a FHIRPath expression. Pos is the byte
// offset (0-based) where the problem was found.
type ParseError struct {
	Src string
	Pos int
	Msg string
}

// Error implements error.
func (e *ParseError) Error() string {
	return fmt.Sprintf("fhirpath: parse error at column %d: %s (in %q)", e.Pos+1, e.Msg, truncate(e.Src, 120))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// dateLiteralRE matches a date, dateTime or time literal including '@'.
var dateLiteralRE = regexp.MustCompile(`^@(?:T\d{2}(?::\d{2}(?::\d{2}(?:\.\d+)?)?)?|\d{4}(?:-\d{2}(?:-\d{2})?)?(?:T(?:\d{2}(?::\d{2}(?::\d{2}(?:\.\d+)?)?)?(?:Z|[+-]\d{2}:\d{2})?)?)?)`)

type lexer struct {
	src string
	pos int
}

func (l *lexer) errorf(pos int, format string, args ...any) error {
	return &ParseError{Src: l.src, Pos: pos, Msg: fmt.Sprintf(format, args...)}
}

func isIdentStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func (l *lexer) skipSpace() error {
	for l.pos < len(l.src) {
		c := l.src[l.pos]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f':
			l.pos++
		case strings.HasPrefix(l.src[l.pos:], "//"):
			if i := strings.IndexByte(l.src[l.pos:], '\n'); i >= 0 {
				l.pos += i + 1
			} else {
				l.pos = len(l.src)
			}
		case strings.HasPrefix(l.src[l.pos:], "/*"):
			i := strings.Index(l.src[l.pos+2:], "*/")
			if i < 0 {
				return l.errorf(l.pos, "unterminated comment")
			}
			l.pos += i + 4
		default:
			return nil
		}
	}
	return nil
}

// next returns the next token.
func (l *lexer) next() (token, error) {
	if err := l.skipSpace(); err != nil {
		return token{}, err
	}
	start := l.pos
	if l.pos >= len(l.src) {
		return token{kind: tokEOF, pos: start}, nil
	}
	c := l.src[l.pos]
	switch {
	case isIdentStart(c):
		l.pos++
		for l.pos < len(l.src) && (isIdentStart(l.src[l.pos]) || isDigit(l.src[l.pos])) {
			l.pos++
		}
		return token{kind: tokIdent, text: l.src[start:l.pos], pos: start}, nil
	case isDigit(c):
		for l.pos < len(l.src) && isDigit(l.src[l.pos]) {
			l.pos++
		}
		if l.pos+1 < len(l.src) && l.src[l.pos] == '.' && isDigit(l.src[l.pos+1]) {
			l.pos++
			for l.pos < len(l.src) && isDigit(l.src[l.pos]) {
				l.pos++
			}
		}
		return token{kind: tokNumber, text: l.src[start:l.pos], pos: start}, nil
	case c == '\'':
		s, err := l.quoted('\'')
		return token{kind: tokString, text: s, pos: start}, err
	case c == '`':
		s, err := l.quoted('`')
		return token{kind: tokDelimIdent, text: s, pos: start}, err
	case c == '@':
		m := dateLiteralRE.FindString(l.src[l.pos:])
		if m == "" {
			return token{}, l.errorf(start, "malformed date/time literal after '@'")
		}
		l.pos += len(m)
		return token{kind: tokDate, text: m[1:], pos: start}, nil
	case c == '%':
		l.pos++
		if l.pos < len(l.src) && (l.src[l.pos] == '`' || l.src[l.pos] == '\'') {
			s, err := l.quoted(l.src[l.pos])
			return token{kind: tokExternal, text: s, pos: start}, err
		}
		n := l.pos
		for l.pos < len(l.src) && (isIdentStart(l.src[l.pos]) || isDigit(l.src[l.pos])) {
			l.pos++
		}
		if n == l.pos || isDigit(l.src[n]) {
			return token{}, l.errorf(start, "expected a variable name after '%%'")
		}
		return token{kind: tokExternal, text: l.src[n:l.pos], pos: start}, nil
	case c == '$':
		l.pos++
		n := l.pos
		for l.pos < len(l.src) && isIdentStart(l.src[l.pos]) {
			l.pos++
		}
		name := l.src[n:l.pos]
		if name != "this" && name != "index" && name != "total" {
			return token{}, l.errorf(start, "unknown special variable $%s (want $this, $index or $total)", name)
		}
		return token{kind: tokSpecial, text: name, pos: start}, nil
	}
	for _, p := range []string{"<=", ">=", "!=", "!~"} {
		if strings.HasPrefix(l.src[l.pos:], p) {
			l.pos += 2
			return token{kind: tokPunct, text: p, pos: start}, nil
		}
	}
	if strings.IndexByte(".,()[]{}+-*/&|<>=~", c) >= 0 {
		l.pos++
		return token{kind: tokPunct, text: l.src[start:l.pos], pos: start}, nil
	}
	r, _ := utf8.DecodeRuneInString(l.src[l.pos:])
	return token{}, l.errorf(start, "unexpected character %q", r)
}

// quoted reads a quoted string or delimited identifier with FHIRPath escapes.
func (l *lexer) quoted(q byte) (string, error) {
	start := l.pos
	l.pos++
	var b strings.Builder
	for l.pos < len(l.src) {
		c := l.src[l.pos]
		switch {
		case c == q:
			l.pos++
			return b.String(), nil
		case c == '\\':
			if l.pos+1 >= len(l.src) {
				return "", l.errorf(l.pos, "unterminated escape sequence")
			}
			e := l.src[l.pos+1]
			l.pos += 2
			switch e {
			case '\'', '"', '`', '\\', '/':
				b.WriteByte(e)
			case 'f':
				b.WriteByte('\f')
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case 'u':
				if l.pos+4 > len(l.src) {
					return "", l.errorf(l.pos-2, "incomplete \\u escape")
				}
				v, err := strconv.ParseUint(l.src[l.pos:l.pos+4], 16, 32)
				if err != nil {
					return "", l.errorf(l.pos-2, "invalid \\u escape %q", l.src[l.pos:l.pos+4])
				}
				b.WriteRune(rune(v))
				l.pos += 4
			default:
				return "", l.errorf(l.pos-2, "invalid escape sequence \\%c", e)
			}
		default:
			b.WriteByte(c)
			l.pos++
		}
	}
	return "", l.errorf(start, "unterminated %c-quoted text", q)
}
