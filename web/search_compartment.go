package web

import (
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"

	"github.com/fhirsub/fhirsub/conformance/definitions"
)

// patientCompartmentDef is the canonical of R4's Patient compartment, the
// one compartment searched here.
const patientCompartmentDef = "http://hl7.org/fhir/CompartmentDefinition/patient"

// searchCompartment answers a compartment search, GET (or POST _search)
// [base]/Patient/[id]/[type]?params (R4 search.html, compartments): the
// search of [type] kept to the resources in that patient's compartment,
// those whose compartment parameters (Observation's subject and performer,
// …) name Patient/[id], and the patient itself. It runs as the caller's
// search, so a token's own restrictions apply as well: a patient token
// asking for another patient's compartment finds nothing. The patient
// need not exist (its compartment is then empty), as a search by
// reference would answer.
func (s *Server) searchCompartment(c echo.Context) error {
	comp, id, err := s.typeAndID(c)
	if err != nil {
		return err
	}
	if comp != "Patient" {
		return errorf(http.StatusBadRequest, "not-supported",
			"compartment search is supported in the Patient compartment only, not %s", comp)
	}
	target := c.Param("target")
	if target == "*" {
		return errorf(http.StatusBadRequest, "not-supported",
			"a search of every type of a compartment (Patient/%s/*) is not supported: name the type, Patient/%s/Observation", id, id)
	}
	if !s.knownType(target) {
		return errorf(http.StatusNotFound, "not-supported", "unknown resource type %q", target)
	}
	params, err := searchParams(c)
	if err != nil {
		return err
	}
	b, err := s.searchBundleWithin(c.Request().Context(), target, params, "/Patient/"+id+"/"+target,
		lenientSearch(c.Request().Header), patientCompartment(target, id))
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, b)
}

// patientCompartment is, for resources of type typ, one parameter set per
// way a resource lies in the compartment of patient id; none (an empty,
// non-nil list) when no resource of the type can.
func patientCompartment(typ, id string) []url.Values {
	codes := definitions.PatientCompartment(typ)
	out := make([]url.Values, 0, len(codes)+1)
	if typ == "Patient" {
		out = append(out, url.Values{"_id": {id}})
	}
	for _, code := range codes {
		out = append(out, url.Values{code: {"Patient/" + id}})
	}
	return out
}
