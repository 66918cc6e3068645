package definitions

import (
	"bytes"
	"compress/gzip"
	"embed"
	"encoding/json"
	"fmt"
)

//go:embed searchparams.json.gz compartment.json.gz types.json.gz
var data embed.FS

// mustLoad decodes the gzipped JSON file name of the embedded data into v.
// The files are generated and committed, and the tests decode every one of
// them, so a failure here is a build defect, not bad input: it panics.
func mustLoad(name string, v any) {
	if err := load(name, v); err != nil {
		panic(fmt.Sprintf("definitions: embedded %s: %v", name, err))
	}
}

func load(name string, v any) error {
	b, err := data.ReadFile(name)
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("gunzip: %w", err)
	}
	defer zr.Close()
	if err := json.NewDecoder(zr).Decode(v); err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	return nil
}
