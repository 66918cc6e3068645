package definitions

import "sync"

var (
	compartmentOnce sync.Once
	compartment     map[string][]string
)

// PatientCompartment returns the codes of the search parameters that put a
// resource of the given type in a Patient's compartment, as the R4 Patient
// CompartmentDefinition lists them (Observation: subject, performer; Patient:
// link). It returns nil for types outside the compartment.
func PatientCompartment(resourceType string) []string {
	compartmentOnce.Do(func() {
		var f struct {
			PatientCompartment map[string][]string `json:"patientCompartment"`
		}
		mustLoad("compartment.json.gz", &f)
		compartment = f.PatientCompartment
	})
	return compartment[resourceType]
}
