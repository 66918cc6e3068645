package schema

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

var printer = message.NewPrinter(language.English)

// maxEnumShown bounds the codes listed in a message.
const maxEnumShown = 12

// issues flattens a validation error tree into one issue per failed leaf.
func issues(rt string, root *jsonschema.ValidationError) []Issue {
	var out []Issue
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) > 0 {
			for _, c := range e.Causes {
				walk(c)
			}
			return
		}
		out = append(out, leafIssues(rt, e)...)
	}
	walk(root)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	// A value may fail the same way through two routes; report it once.
	uniq := out[:0]
	for i, is := range out {
		if i > 0 && is == out[i-1] {
			continue
		}
		uniq = append(uniq, is)
	}
	return uniq
}

func leafIssues(rt string, e *jsonschema.ValidationError) []Issue {
	path := fhirPath(rt, e.InstanceLocation)
	switch k := e.ErrorKind.(type) {
	case *kind.AdditionalProperties:
		out := make([]Issue, 0, len(k.Properties))
		for _, p := range k.Properties {
			out = append(out, Issue{Path: path + "." + p, Message: "unknown element"})
		}
		return out
	case *kind.Required:
		out := make([]Issue, 0, len(k.Missing))
		for _, p := range k.Missing {
			out = append(out, Issue{Path: path + "." + p, Message: "required element is missing"})
		}
		return out
	case *missingKind:
		if slices.Contains(k.names, "extension") {
			return []Issue{{Path: path, Message: ext1Missing}}
		}
		names := k.elementNames()
		if len(names) == 1 {
			return []Issue{{Path: path + "." + names[0], Message: "required element is missing"}}
		}
		return []Issue{{Path: path, Message: "required element is missing: one of " + strings.Join(names, ", ")}}
	case *kind.Type:
		return []Issue{{Path: path, Message: fmt.Sprintf("expected %s, got %s", article(strings.Join(k.Want, " or ")), article(k.Got))}}
	case *kind.Enum:
		return []Issue{{Path: path, Message: fmt.Sprintf("value %s must be one of %s", show(k.Got), enumList(k.Want))}}
	case *kind.Const:
		return []Issue{{Path: path, Message: fmt.Sprintf("value %s must be %s", show(k.Got), show(k.Want))}}
	case *kind.Pattern:
		if name, ok := patternTypes[k.Want]; ok {
			if why := noSuchDay(k.Got); dayTypes[name] && why != "" && patternOnly(k.Want, k.Got) {
				return []Issue{{Path: path, Message: fmt.Sprintf("%s is not a day of the calendar (%s)", show(k.Got), why)}}
			}
			return []Issue{{Path: path, Message: fmt.Sprintf("%s does not match the %s pattern", show(k.Got), name)}}
		}
		return []Issue{{Path: path, Message: fmt.Sprintf("%s does not match the pattern %s", show(k.Got), k.Want)}}
	case *kind.MinItems:
		return []Issue{{Path: path, Message: "array must not be empty"}}
	case *kind.MinProperties:
		return []Issue{{Path: path, Message: "object must not be empty (an element has a value or children)"}}
	case *kind.Minimum:
		return []Issue{{Path: path, Message: fmt.Sprintf("value %s must be at least %s", k.Got.RatString(), k.Want.RatString())}}
	case *kind.Maximum:
		return []Issue{{Path: path, Message: fmt.Sprintf("value %s must be at most %s (FHIR integers are 32-bit)", k.Got.RatString(), k.Want.RatString())}}
	default:
		return []Issue{{Path: path, Message: e.ErrorKind.LocalizedString(printer)}}
	}
}

// fhirPath renders a JSON pointer token list as a FHIR path:
// [name 0 given 1] -> Patient.name[0].given[1]. FHIR element names never
// start with a digit, so all-digit tokens are array indexes.
func fhirPath(rt string, loc []string) string {
	var b strings.Builder
	b.WriteString(rt)
	for _, tok := range loc {
		if _, err := strconv.Atoi(tok); err == nil {
			b.WriteString("[")
			b.WriteString(tok)
			b.WriteString("]")
			continue
		}
		b.WriteString(".")
		b.WriteString(tok)
	}
	return b.String()
}

func article(t string) string {
	switch {
	case t == "":
		return "nothing"
	case t == "null":
		return "null"
	case strings.IndexByte("aeiou", t[0]) >= 0:
		return "an " + t
	default:
		return "a " + t
	}
}

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case json.Number, float64, float32, int, int64:
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	default:
		return fmt.Sprintf("%T", v)
	}
}

// show quotes strings and prints other values as JSON would.
func show(v any) string {
	switch x := v.(type) {
	case string:
		return strconv.Quote(x)
	case json.Number:
		return x.String()
	case nil:
		return "null"
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	default:
		return fmt.Sprint(x)
	}
}

func enumList(want []any) string {
	parts := make([]string, 0, min(len(want), maxEnumShown)+1)
	for i, w := range want {
		if i == maxEnumShown {
			parts = append(parts, "…")
			break
		}
		parts = append(parts, fmt.Sprint(w))
	}
	return strings.Join(parts, ", ")
}
