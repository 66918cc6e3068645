package fhirpath

import (
	"encoding/json"
	"strconv"
	"strings"
)

// maxParseDepth bounds the nesting of an expression.
const maxParseDepth = 200

// maxSourceLen bounds the length of an expression.
const maxSourceLen = 64 << 10

// Expression is a parsed FHIRPath expression. It is immutable and safe for
// concurrent use by several goroutines.
type Expression struct {
	src  string
	root *node
}

// Parse parses a FHIRPath expression. A syntax error is a *ParseError
// giving the column and what was expected.
func Parse(src string) (*Expression, error) {
	if len(src) > maxSourceLen {
		return nil, &ParseError{Src: src, Pos: maxSourceLen, Msg: "expression is too long"}
	}
	p := &parser{lex: lexer{src: src}}
	if err := p.advance(); err != nil {
		return nil, err
	}
	root, err := p.expr(0)
	if err != nil {
		return nil, err
	}
	if p.tok.kind != tokEOF {
		return nil, p.errorf("unexpected %s after the end of the expression", p.tok.describe())
	}
	if d := root.depth(); d > maxTreeDepth {
		return nil, &ParseError{Src: src, Pos: 0, Msg: "expression is nested too deeply (tree depth " + strconv.Itoa(d) + ")"}
	}
	return &Expression{src: src, root: root}, nil
}

// maxTreeDepth bounds the depth of the parsed tree, which bounds the
// recursion of the evaluator.
const maxTreeDepth = 1000

func (n *node) depth() int {
	d := 0
	if n.target != nil {
		d = n.target.depth()
	}
	for _, a := range n.args {
		d = max(d, a.depth())
	}
	return d + 1
}

// MustParse is like Parse but panics on a syntax error. It is meant for
// expressions written in the program text.
func MustParse(src string) *Expression {
	e, err := Parse(src)
	if err != nil {
		panic(err)
	}
	return e
}

// String returns the source text of the expression.
func (e *Expression) String() string { return e.src }

// canonical returns the tree printed in canonical form (fully
// parenthesised); parsing it gives the same tree.
func (e *Expression) canonical() string { return e.root.String() }

type parser struct {
	lex   lexer
	tok   token
	depth int
}

func (t token) describe() string {
	switch t.kind {
	case tokEOF:
		return "end of expression"
	case tokString:
		return "string '" + truncate(t.text, 20) + "'"
	case tokDate:
		return "date/time literal"
	case tokExternal:
		return "%" + t.text
	case tokSpecial:
		return "$" + t.text
	}
	return "'" + truncate(t.text, 20) + "'"
}

func (p *parser) advance() error {
	t, err := p.lex.next()
	if err != nil {
		return err
	}
	p.tok = t
	return nil
}

func (p *parser) errorf(format string, args ...any) error {
	return p.lex.errorf(p.tok.pos, format, args...)
}

func (p *parser) isPunct(s string) bool { return p.tok.kind == tokPunct && p.tok.text == s }

func (p *parser) expect(s string) error {
	if !p.isPunct(s) {
		return p.errorf("expected '%s' but found %s", s, p.tok.describe())
	}
	return p.advance()
}

// Binding powers, loosest first.
const (
	bpImplies = 1 + iota
	bpOr
	bpAnd
	bpMembership
	bpEquality
	bpInequality
	bpUnion
	bpType
	bpAdditive
	bpMultiplicative
	bpUnary
	bpPostfix
)

// infixPower returns the binding power of the current token as an infix
// operator, or 0.
func (p *parser) infixPower() int {
	t := p.tok
	switch t.kind {
	case tokIdent:
		switch t.text {
		case "implies":
			return bpImplies
		case "or", "xor":
			return bpOr
		case "and":
			return bpAnd
		case "in", "contains":
			return bpMembership
		case "is", "as":
			return bpType
		case "div", "mod":
			return bpMultiplicative
		}
	case tokPunct:
		switch t.text {
		case "=", "~", "!=", "!~":
			return bpEquality
		case "<", ">", "<=", ">=":
			return bpInequality
		case "|":
			return bpUnion
		case "+", "-", "&":
			return bpAdditive
		case "*", "/":
			return bpMultiplicative
		case ".", "[":
			return bpPostfix
		}
	}
	return 0
}

func (p *parser) expr(minBP int) (*node, error) {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > maxParseDepth {
		return nil, p.errorf("expression is nested too deeply (more than %d levels)", maxParseDepth)
	}
	left, err := p.prefix()
	if err != nil {
		return nil, err
	}
	for {
		bp := p.infixPower()
		if bp == 0 || bp <= minBP {
			return left, nil
		}
		op := p.tok
		if err := p.advance(); err != nil {
			return nil, err
		}
		switch {
		case op.text == ".":
			left, err = p.member(left)
		case op.text == "[":
			var idx *node
			if idx, err = p.expr(0); err == nil {
				err = p.expect("]")
				left = &node{kind: nIndex, pos: op.pos, target: left, args: []*node{idx}}
			}
		case op.text == "is" || op.text == "as":
			left, err = p.typeOp(left, op)
		default:
			var right *node
			if right, err = p.expr(bp); err == nil {
				left = &node{kind: nBinary, pos: op.pos, name: op.text, target: left, args: []*node{right}}
			}
		}
		if err != nil {
			return nil, err
		}
	}
}

func (p *parser) typeOp(left *node, op token) (*node, error) {
	ns, name, pos, err := p.typeSpecifier()
	if err != nil {
		return nil, err
	}
	spec := &node{kind: nIdent, pos: pos, name: name}
	return &node{kind: nTypeOp, pos: op.pos, name: op.text, target: left, args: []*node{spec}, ns: ns}, nil
}

// typeSpecifier parses [FHIR. | System.]Name.
func (p *parser) typeSpecifier() (ns, name string, pos int, err error) {
	if p.tok.kind != tokIdent && p.tok.kind != tokDelimIdent {
		return "", "", 0, p.errorf("expected a type name but found %s", p.tok.describe())
	}
	name, pos = p.tok.text, p.tok.pos
	if err := p.advance(); err != nil {
		return "", "", 0, err
	}
	if (name == "FHIR" || name == "System") && p.isPunct(".") {
		if err := p.advance(); err != nil {
			return "", "", 0, err
		}
		if p.tok.kind != tokIdent && p.tok.kind != tokDelimIdent {
			return "", "", 0, p.errorf("expected a type name after '%s.' but found %s", name, p.tok.describe())
		}
		ns, name, pos = name, p.tok.text, p.tok.pos
		if err := p.advance(); err != nil {
			return "", "", 0, err
		}
	}
	return ns, name, pos, nil
}

// member parses what follows a '.': a name or a function call.
func (p *parser) member(target *node) (*node, error) {
	t := p.tok
	if t.kind != tokIdent && t.kind != tokDelimIdent {
		return nil, p.errorf("expected a name after '.' but found %s", t.describe())
	}
	if err := p.advance(); err != nil {
		return nil, err
	}
	if t.kind == tokIdent && p.isPunct("(") {
		return p.call(target, t)
	}
	return &node{kind: nMember, pos: t.pos, name: t.text, target: target}, nil
}

// call parses the argument list of function name (current token '(').
func (p *parser) call(target *node, name token) (*node, error) {
	fn := functions[name.text]
	if fn == nil {
		return nil, p.lex.errorf(name.pos, "unknown function %s()", name.text)
	}
	if err := p.advance(); err != nil {
		return nil, err
	}
	n := &node{kind: nFunc, pos: name.pos, name: name.text, target: target, fn: fn}
	if !p.isPunct(")") {
		for {
			if fn.typeArg && len(n.args) == 0 {
				ns, tn, pos, err := p.typeSpecifier()
				if err != nil {
					return nil, err
				}
				n.ns = ns
				n.args = append(n.args, &node{kind: nIdent, pos: pos, name: tn})
			} else {
				a, err := p.expr(0)
				if err != nil {
					return nil, err
				}
				n.args = append(n.args, a)
			}
			if !p.isPunct(",") {
				break
			}
			if err := p.advance(); err != nil {
				return nil, err
			}
		}
	}
	if err := p.expect(")"); err != nil {
		return nil, err
	}
	if len(n.args) < fn.minArgs || len(n.args) > fn.maxArgs {
		return nil, p.lex.errorf(name.pos, "%s() takes %s, got %d", name.text, fn.arity(), len(n.args))
	}
	return n, nil
}

func (p *parser) prefix() (*node, error) {
	t := p.tok
	switch t.kind {
	case tokEOF:
		return nil, p.errorf("unexpected end of expression")
	case tokIdent:
		if err := p.advance(); err != nil {
			return nil, err
		}
		if p.isPunct("(") {
			return p.call(nil, t)
		}
		if t.text == "true" || t.text == "false" {
			return &node{kind: nLiteral, pos: t.pos, lit: []Value{{Data: t.text == "true", Type: TypeBoolean}}}, nil
		}
		return &node{kind: nIdent, pos: t.pos, name: t.text}, nil
	case tokDelimIdent:
		return &node{kind: nIdent, pos: t.pos, name: t.text}, p.advance()
	case tokString:
		return &node{kind: nLiteral, pos: t.pos, lit: []Value{{Data: t.text, Type: TypeString}}}, p.advance()
	case tokNumber:
		return p.number(t)
	case tokDate:
		tv, ok := parseTemporal(t.text, false)
		if !ok {
			return nil, p.errorf("invalid date/time literal @%s", t.text)
		}
		return &node{kind: nLiteral, pos: t.pos, lit: []Value{{Data: tv, Type: tv.typeName()}}}, p.advance()
	case tokExternal:
		return &node{kind: nVar, pos: t.pos, name: t.text}, p.advance()
	case tokSpecial:
		k := map[string]nodeKind{"this": nThis, "index": nIndexVar, "total": nTotal}[t.text]
		return &node{kind: k, pos: t.pos}, p.advance()
	}
	switch t.text {
	case "(":
		if err := p.advance(); err != nil {
			return nil, err
		}
		inner, err := p.expr(0)
		if err != nil {
			return nil, err
		}
		return &node{kind: nParen, pos: t.pos, target: inner}, p.expect(")")
	case "{":
		if err := p.advance(); err != nil {
			return nil, err
		}
		return &node{kind: nLiteral, pos: t.pos, lit: []Value{}}, p.expect("}")
	case "+", "-":
		if err := p.advance(); err != nil {
			return nil, err
		}
		operand, err := p.expr(bpUnary)
		if err != nil {
			return nil, err
		}
		if t.text == "+" {
			return operand, nil
		}
		if operand.kind == nLiteral && len(operand.lit) == 1 {
			if neg, ok := negate(operand.lit[0]); ok {
				return &node{kind: nLiteral, pos: t.pos, lit: []Value{neg}}, nil
			}
		}
		return &node{kind: nUnary, pos: t.pos, name: "-", target: operand}, nil
	}
	return nil, p.errorf("unexpected %s", t.describe())
}

// number parses a number literal, and a quantity when a unit follows.
func (p *parser) number(t token) (*node, error) {
	if err := p.advance(); err != nil {
		return nil, err
	}
	var v Value
	if strings.Contains(t.text, ".") {
		v = Value{Data: json.Number(t.text), Type: TypeDecimal}
	} else if i, err := strconv.ParseInt(t.text, 10, 64); err == nil {
		v = Value{Data: i, Type: TypeInteger}
	} else {
		v = Value{Data: json.Number(t.text), Type: TypeDecimal}
	}
	unit, isUnit := "", false
	switch {
	case p.tok.kind == tokString:
		unit, isUnit = p.tok.text, true
	case p.tok.kind == tokIdent && calendarUnits[p.tok.text] != "":
		unit, isUnit = p.tok.text, true
	}
	if isUnit {
		if err := p.advance(); err != nil {
			return nil, err
		}
		v = Value{Data: Quantity{Value: json.Number(t.text), Unit: unit}, Type: TypeQuantity}
	}
	return &node{kind: nLiteral, pos: t.pos, lit: []Value{v}}, nil
}

func negate(v Value) (Value, bool) {
	switch d := v.Data.(type) {
	case int64:
		return Value{Data: -d, Type: v.Type}, true
	case json.Number:
		if strings.HasPrefix(string(d), "-") {
			return Value{Data: json.Number(string(d)[1:]), Type: v.Type}, true
		}
		return Value{Data: "-" + d, Type: v.Type}, true
	case Quantity:
		n, _ := negate(Value{Data: d.Value})
		return Value{Data: Quantity{Value: n.Data.(json.Number), Unit: d.Unit}, Type: v.Type}, true
	}
	return Value{}, false
}
