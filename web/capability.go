package web

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/fhirsub/fhirsub/conformance"
	"github.com/fhirsub/fhirsub/conformance/search"
	"github.com/fhirsub/fhirsub/fhirstore"
)

// Backport IG canonicals published in the CapabilityStatement.
const (
	backportServerCS      = "http://hl7.org/fhir/uv/subscriptions-backport/CapabilityStatement/backport-subscription-server-r4"
	backportIG            = "http://hl7.org/fhir/uv/subscriptions-backport/ImplementationGuide/hl7.fhir.uv.subscriptions-backport"
	backportSubscription  = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-subscription"
	backportTopicCanon    = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/capabilitystatement-subscriptiontopic-canonical"
	backportStatusOpDef   = "http://hl7.org/fhir/uv/subscriptions-backport/OperationDefinition/backport-subscription-status"
	backportEventsOpDef   = "http://hl7.org/fhir/uv/subscriptions-backport/OperationDefinition/backport-subscription-events"
	capabilityCacheSepKey = "\n"
)

// buildCapability renders the CapabilityStatement from the routes this
// package wires and, when subscriptions are wired, the given topics.
func (s *Server) buildCapability(topics []string) ([]byte, error) {
	c := conformance.Capabilities{
		BaseURL:         s.base,
		SoftwareName:    s.cfg.SoftwareName,
		SoftwareVersion: s.cfg.SoftwareVersion,
		TypeInteractions: []string{"read", "vread", "update", "patch", "delete", "history-instance",
			"history-type", "create", "search-type"},
		SystemInteractions:   []string{"transaction", "batch", "search-system", "history-system"},
		SearchParamSupported: search.Supported,
		SearchInclude:        search.Includes,
		ConditionalCreate:    true,
		ConditionalUpdate:    true,
		ConditionalDelete:    "single",
		ConditionalRead:      "full-support",
		PatchFormats:         []string{jsonPatchType, "application/fhir+json"},
		CORS:                 len(s.cfg.CORSOrigins) > 0,
		Compartments:         []string{patientCompartmentDef},
	}
	if s.cfg.ConditionalDeleteMultiple {
		c.ConditionalDelete = "multiple"
	}
	if s.cfg.Subscriptions != nil {
		c.Instantiates = []string{backportServerCS}
		exts := make([]any, 0, len(topics))
		for _, t := range topics {
			exts = append(exts, map[string]any{"url": backportTopicCanon, "valueCanonical": t})
		}
		extra := map[string]any{"supportedProfile": []any{backportSubscription}}
		if len(exts) > 0 {
			extra["extension"] = exts
		}
		c.ResourceExtras = map[string]map[string]any{"Subscription": extra}
		c.Operations = []conformance.Operation{
			{ResourceType: "Subscription", Name: "status", Definition: backportStatusOpDef},
			{ResourceType: "Subscription", Name: "events", Definition: backportEventsOpDef},
		}
		if s.cfg.WSBinding != nil {
			c.Operations = append(c.Operations, conformance.Operation{ResourceType: "Subscription",
				Name: "get-ws-binding-token", Definition: backportWSTokenOpDef})
		}
	}
	if s.cfg.Handlers[r4WebsocketPath] != nil {
		c.RestExtensions = append(c.RestExtensions, map[string]any{"url": capabilityWebsocket,
			"valueUri": websocketURL(s.base, r4WebsocketPath)})
	}
	cs := conformance.CapabilityStatement(c)
	if s.cfg.Subscriptions != nil {
		cs["implementationGuide"] = []string{backportIG}
	}
	b, err := fhirstore.Encode(cs)
	if err != nil {
		return nil, fmt.Errorf("encode capability statement: %w", err)
	}
	return b, nil
}

// currentCapability returns the CapabilityStatement, rebuilt when the set
// of topics changed since the last build.
func (s *Server) currentCapability() ([]byte, error) {
	if s.cfg.Subscriptions == nil {
		return s.capability, nil
	}
	topics := s.cfg.Subscriptions.TopicCanonicals()
	key := strings.Join(topics, capabilityCacheSepKey)
	s.capMu.Lock()
	defer s.capMu.Unlock()
	if s.capability != nil && key == s.capKey {
		return s.capability, nil
	}
	b, err := s.buildCapability(topics)
	if err != nil {
		return nil, err
	}
	s.capability, s.capKey = b, key
	return b, nil
}

func (s *Server) metadata(c echo.Context) error {
	b, err := s.currentCapability()
	if err != nil {
		return err
	}
	return c.Blob(http.StatusOK, fhirJSON, b)
}
