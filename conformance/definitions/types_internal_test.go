package definitions

import (
	"strings"
	"testing"
)

// TestChoiceNames: every choice element of every type names one JSON key
// per type, in the order of its types (valueQuantity for Quantity,
// valueString for string), and no other element has names.
func TestChoiceNames(t *testing.T) {
	choices := 0
	for typ, ti := range typeModel() {
		for name := range ti.Elements {
			info, ok := Child(typ, name)
			if !ok {
				t.Errorf("Child(%s, %s): not found", typ, name)
				continue
			}
			if !info.Choice {
				if info.Names != nil {
					t.Errorf("%s.%s is not a choice but has names %v", typ, name, info.Names)
				}
				continue
			}
			choices++
			if len(info.Names) != len(info.Types) {
				t.Errorf("%s.%s: %d names for %d types", typ, name, len(info.Names), len(info.Types))
				continue
			}
			for i, tc := range info.Types {
				if want := name + strings.ToUpper(tc[:1]) + tc[1:]; info.Names[i] != want {
					t.Errorf("%s.%s: name %d = %q, want %q", typ, name, i, info.Names[i], want)
				}
			}
		}
	}
	t.Logf("%d choice elements checked", choices)
	if choices < 100 {
		t.Errorf("only %d choice elements: the type model is not what it seems", choices)
	}
}
