package schema

import (
	"bytes"
	"compress/gzip"
	_ "embed"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/fhirsub/fhirsub/conformance/definitions"
)

//go:embed fhir.schema.json.gz
var schemaGz []byte

// schemaURL names the embedded schema document inside the compiler.
const schemaURL = "urn:fhirsub:fhir.schema.json"

// ErrNoResourceType is returned for a resource without a resourceType.
var ErrNoResourceType = errors.New("resource has no resourceType")

// ErrUnknownResourceType is returned for a resourceType that R4 does not
// define.
var ErrUnknownResourceType = errors.New("unknown resource type")

// Issue is one structural problem of a resource.
type Issue struct {
	// Path is the FHIR-style location of the element: "Observation.status",
	// "Patient.name[0].given[1]".
	Path string
	// Message says what is wrong, in plain English.
	Message string
}

// Error is returned by Validate for a resource that breaks the schema.
type Error struct {
	Issues []Issue
}

// maxIssuesInMessage bounds the length of Error.Error.
const maxIssuesInMessage = 10

// Error lists the issues, at most ten of them.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("invalid resource: ")
	for i, is := range e.Issues {
		if i == maxIssuesInMessage {
			fmt.Fprintf(&b, "; and %d more", len(e.Issues)-i)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(is.Path)
		b.WriteString(": ")
		b.WriteString(is.Message)
	}
	return b.String()
}

// Validate checks res against the R4 JSON schema of its resourceType, and
// against the rules of contained resources and local references
// (contained.go). It returns nil for a valid resource, an *Error listing the issues for an
// invalid one, and an error wrapping ErrNoResourceType or
// ErrUnknownResourceType when the type cannot be told.
func Validate(res map[string]any) error {
	rt, err := resourceType(res)
	if err != nil {
		return err
	}
	sch, err := compiled(rt)
	if err != nil {
		return err
	}
	err = sch.Validate(res)
	if err == nil {
		if is := containedIssues(rt, res); len(is) > 0 {
			return &Error{Issues: is}
		}
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return fmt.Errorf("validate %s: %w", rt, err)
	}
	return &Error{Issues: issues(rt, ve)}
}

func resourceType(res map[string]any) (string, error) {
	v, ok := res["resourceType"]
	if !ok {
		return "", ErrNoResourceType
	}
	rt, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("%w: resourceType is a %s, not a string", ErrUnknownResourceType, jsonType(v))
	}
	if !definitions.IsResourceType(rt) {
		return "", fmt.Errorf("%w %q", ErrUnknownResourceType, rt)
	}
	return rt, nil
}

// compiler state: the compiler is not safe for concurrent use, compiled
// schemas are.
var (
	loadOnce sync.Once
	loadErr  error
	// patternTypes maps a primitive type's regular expression to its name,
	// to name the type in messages.
	patternTypes map[string]string

	compileMu sync.Mutex
	compiler  *jsonschema.Compiler
	cache     sync.Map // resource type -> *jsonschema.Schema
	// definitionsDoc is the schema document's definitions (read only).
	definitionsDoc map[string]any
)

func load() error {
	loadOnce.Do(func() {
		zr, err := gzip.NewReader(bytes.NewReader(schemaGz))
		if err != nil {
			loadErr = fmt.Errorf("gunzip embedded schema: %w", err)
			return
		}
		doc, err := jsonschema.UnmarshalJSON(zr)
		if err != nil {
			loadErr = fmt.Errorf("decode embedded schema: %w", err)
			return
		}
		patternTypes = primitivePatterns(doc)
		definitionsDoc, _ = doc.(map[string]any)["definitions"].(map[string]any)
		c := jsonschema.NewCompiler()
		c.DefaultDraft(jsonschema.Draft6)
		c.UseRegexpEngine(compileRegexp)
		vocab, err := fhirVocabulary()
		if err != nil {
			loadErr = err
			return
		}
		c.RegisterVocabulary(vocab)
		if err := c.AddResource(schemaURL, doc); err != nil {
			loadErr = fmt.Errorf("add embedded schema: %w", err)
			return
		}
		compiler = c
	})
	return loadErr
}

// compiled returns the schema of one resource type, compiling it on first
// use. rt must be a known resource type.
func compiled(rt string) (*jsonschema.Schema, error) {
	if s, ok := cache.Load(rt); ok {
		return s.(*jsonschema.Schema), nil
	}
	if err := load(); err != nil {
		return nil, err
	}
	compileMu.Lock()
	defer compileMu.Unlock()
	if s, ok := cache.Load(rt); ok {
		return s.(*jsonschema.Schema), nil
	}
	s, err := compiler.Compile(schemaURL + "#/definitions/" + rt)
	if err != nil {
		return nil, fmt.Errorf("compile schema of %s: %w", rt, err)
	}
	cache.Store(rt, s)
	return s, nil
}

func primitivePatterns(doc any) map[string]string {
	out := map[string]string{}
	defs, _ := doc.(map[string]any)["definitions"].(map[string]any)
	names := make([]string, 0, len(defs))
	for n := range defs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		d, _ := defs[n].(map[string]any)
		if p, ok := d["pattern"].(string); ok && definitions.IsPrimitive(n) {
			// Types sharing a pattern are named by their common base
			// (markdown and string by "string", url and uri by "uri").
			if prev, dup := out[p]; !dup || definitions.IsSubtype(prev, n) {
				out[p] = n
			}
		}
	}
	return out
}

// Mandatory returns the JSON names of the top-level elements a resource of
// type rt must have (cardinality 1..), with the _name of a primitive and
// every type of a choice: what _summary=text keeps besides text, id and
// meta. rt must be a known resource type.
func Mandatory(rt string) (map[string]bool, error) {
	if err := load(); err != nil {
		return nil, err
	}
	def, ok := definitionsDoc[rt].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownResourceType, rt)
	}
	out := map[string]bool{}
	req, _ := def["required"].([]any)
	for _, n := range req {
		if s, ok := n.(string); ok {
			out[s] = true
		}
	}
	for _, g := range nameGroups(def["fhirRequired"]) {
		for _, n := range g {
			out[n] = true
		}
	}
	return out, nil
}
