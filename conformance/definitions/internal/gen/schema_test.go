package main

import (
	"math"
	"reflect"
	"testing"
)

func TestCleanRewritesIntegersAndArrays(t *testing.T) {
	def := map[string]any{
		"description": "drop me",
		"properties": map[string]any{
			"description": map[string]any{"$ref": "#/definitions/string", "description": "drop me too"},
			"count":       map[string]any{"type": "number", "pattern": "^[1-9][0-9]*$"},
			"total":       map[string]any{"type": "number", "pattern": "^[0]|([1-9][0-9]*)$"},
			"offset":      map[string]any{"type": "number", "pattern": "^-?([0]|([1-9][0-9]*))$"},
			"active":      map[string]any{"type": "boolean", "pattern": "^true|false$"},
			"given":       map[string]any{"type": "array", "items": map[string]any{"$ref": "#/definitions/string"}},
		},
	}
	clean(def, false)
	want := map[string]any{
		"properties": map[string]any{
			"description": map[string]any{"$ref": "#/definitions/string"},
			"count":       map[string]any{"type": "integer", "minimum": 1, "maximum": math.MaxInt32, "fhirInteger": true},
			"total":       map[string]any{"type": "integer", "minimum": 0, "maximum": math.MaxInt32, "fhirInteger": true},
			"offset":      map[string]any{"type": "integer", "minimum": math.MinInt32, "maximum": math.MaxInt32, "fhirInteger": true},
			"active":      map[string]any{"type": "boolean"},
			"given":       map[string]any{"type": "array", "minItems": 1, "items": map[string]any{"$ref": "#/definitions/string"}},
		},
	}
	if !reflect.DeepEqual(def, want) {
		t.Errorf("clean:\n got %v\nwant %v", def, want)
	}
	defs := map[string]any{"string": map[string]any{"type": "string", "pattern": "x"}, "T": def}
	inlinePrimitives(defs, map[string]bool{"string": true})
	props := def["properties"].(map[string]any)
	if got := props["description"]; !reflect.DeepEqual(got, map[string]any{"type": "string", "pattern": "x"}) {
		t.Errorf("inlined property: %v", got)
	}
	if got := props["given"].(map[string]any)["items"]; !reflect.DeepEqual(got, map[string]any{"type": "string", "pattern": "x"}) {
		t.Errorf("inlined items: %v", got)
	}
}

func TestCheckPatternsRejectsNonRE2(t *testing.T) {
	if err := checkPatterns(map[string]any{"a": map[string]any{"pattern": `^(?!x)y$`}}); err == nil {
		t.Error("a look-ahead pattern was accepted")
	}
	if err := checkPatterns(map[string]any{"a": map[string]any{"pattern": `^[ \r\n\t\S]+$`}}); err != nil {
		t.Errorf("RE2 pattern rejected: %v", err)
	}
}
