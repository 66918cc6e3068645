package fhirpath

import (
	"encoding/json"
	"strconv"
	"strings"
)

type nodeKind uint8

const (
	nLiteral  nodeKind = iota // lit
	nIdent                    // name, evaluated on the focus (start of a path)
	nMember                   // target.name
	nFunc                     // [target.]name(args)
	nIndex                    // target[args[0]]
	nUnary                    // op target
	nBinary                   // left op right (target op args[0])
	nTypeOp                   // target is/as typeName
	nVar                      // %name
	nThis                     // $this
	nIndexVar                 // $index
	nTotal                    // $total
	nParen                    // (target)
)

// node is one element of the parsed expression tree. Nodes are immutable
// once parsed, so one tree may be evaluated from many goroutines.
type node struct {
	kind   nodeKind
	pos    int
	name   string // identifier, function, operator, variable or type name
	target *node
	args   []*node
	lit    []Value // literal value ({} is an empty slice)
	fn     *funcDef
	ns     string // namespace of a type specifier ("FHIR", "System" or "")
}

// String prints the node in a canonical, fully parenthesised form that
// parses back to the same tree.
func (n *node) String() string {
	var b strings.Builder
	n.write(&b)
	return b.String()
}

func writeIdent(b *strings.Builder, name string) {
	ok := name != "" && isIdentStart(name[0])
	for i := 0; ok && i < len(name); i++ {
		ok = isIdentStart(name[i]) || isDigit(name[i])
	}
	if ok && !reservedWord(name) {
		b.WriteString(name)
		return
	}
	b.WriteByte('`')
	b.WriteString(escapeText(name, '`'))
	b.WriteByte('`')
}

func reservedWord(s string) bool {
	switch s {
	case "and", "or", "xor", "implies", "is", "as", "in", "contains", "div", "mod", "true", "false":
		return true
	}
	return false
}

func escapeText(s string, q byte) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == q || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\r':
			b.WriteString(`\r`)
		case c == '\t':
			b.WriteString(`\t`)
		case c == '\f':
			b.WriteString(`\f`)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func (n *node) write(b *strings.Builder) {
	switch n.kind {
	case nLiteral:
		if len(n.lit) == 0 {
			b.WriteString("{}")
			return
		}
		writeLiteral(b, n.lit[0])
	case nIdent:
		writeIdent(b, n.name)
	case nMember:
		n.target.write(b)
		b.WriteByte('.')
		writeIdent(b, n.name)
	case nFunc:
		if n.target != nil {
			n.target.write(b)
			b.WriteByte('.')
		}
		b.WriteString(n.name) // function names are plain identifiers
		b.WriteByte('(')
		for i, a := range n.args {
			if i > 0 {
				b.WriteString(", ")
			}
			a.write(b)
		}
		b.WriteByte(')')
	case nIndex:
		n.target.write(b)
		b.WriteByte('[')
		n.args[0].write(b)
		b.WriteByte(']')
	case nUnary:
		// the operand keeps its parentheses so it is not folded into a
		// negative literal when parsed again
		b.WriteString("(")
		b.WriteString(n.name)
		b.WriteString("(")
		n.target.write(b)
		b.WriteString("))")
	case nBinary:
		b.WriteByte('(')
		n.target.write(b)
		b.WriteByte(' ')
		b.WriteString(n.name)
		b.WriteByte(' ')
		n.args[0].write(b)
		b.WriteByte(')')
	case nTypeOp:
		b.WriteByte('(')
		n.target.write(b)
		b.WriteByte(' ')
		b.WriteString(n.name)
		b.WriteByte(' ')
		if n.ns != "" {
			b.WriteString(n.ns)
			b.WriteByte('.')
		}
		writeIdent(b, n.args[0].name)
		b.WriteByte(')')
	case nVar:
		b.WriteByte('%')
		writeIdent(b, n.name)
	case nThis:
		b.WriteString("$this")
	case nIndexVar:
		b.WriteString("$index")
	case nTotal:
		b.WriteString("$total")
	case nParen:
		// operators print their own parentheses
		n.target.write(b)
	}
}

func writeLiteral(b *strings.Builder, v Value) {
	switch d := v.Data.(type) {
	case string:
		b.WriteByte('\'')
		b.WriteString(escapeText(d, '\''))
		b.WriteByte('\'')
	case bool:
		b.WriteString(strconv.FormatBool(d))
	case int64:
		writeSigned(b, strconv.FormatInt(d, 10))
	case json.Number:
		writeSigned(b, string(d))
	case Temporal:
		b.WriteByte('@')
		b.WriteString(d.literal())
	case Quantity:
		if strings.HasPrefix(string(d.Value), "-") {
			b.WriteByte('(')
			defer b.WriteByte(')')
		}
		b.WriteString(string(d.Value))
		b.WriteByte(' ')
		if calendarUnits[d.Unit] != "" {
			b.WriteString(d.Unit)
		} else {
			b.WriteByte('\'')
			b.WriteString(escapeText(d.Unit, '\''))
			b.WriteByte('\'')
		}
	}
}

// writeSigned writes a number, in parentheses when negative so that a
// following '.' applies to the whole literal.
func writeSigned(b *strings.Builder, s string) {
	if strings.HasPrefix(s, "-") {
		b.WriteByte('(')
		b.WriteString(s)
		b.WriteByte(')')
		return
	}
	b.WriteString(s)
}
