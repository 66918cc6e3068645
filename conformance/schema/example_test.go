package schema_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/fhirsub/fhirsub/conformance/schema"
)

func ExampleValidate() {
	dec := json.NewDecoder(strings.NewReader(`{
		"resourceType": "Observation",
		"status": "done",
		"code": {"text": "Body weight"},
		"valueQuantity": {"value": "72.5", "unit": "kg"},
		"effectiveDateTime": "2024-13-01",
		"foo": true
	}`))
	dec.UseNumber()
	var res map[string]any
	if err := dec.Decode(&res); err != nil {
		panic(err)
	}
	var se *schema.Error
	if err := schema.Validate(res); errors.As(err, &se) {
		for _, is := range se.Issues {
			fmt.Printf("%s: %s\n", is.Path, is.Message)
		}
	}
	// Output:
	// Observation.effectiveDateTime: "2024-13-01" does not match the dateTime pattern
	// Observation.foo: unknown element
	// Observation.status: value "done" must be one of registered, preliminary, final, amended, corrected, cancelled, entered-in-error, unknown
	// Observation.valueQuantity.value: expected a number, got a string
}
