package web

import (
	"encoding/json"
	"fmt"

	"github.com/fhirsub/fhirsub/conformance"
)

// buildCapability renders the CapabilityStatement once, from the routes
// this package wires.
func (s *Server) buildCapability() ([]byte, error) {
	cs := conformance.CapabilityStatement(conformance.Capabilities{
		BaseURL:         s.base,
		SoftwareName:    s.cfg.SoftwareName,
		SoftwareVersion: s.cfg.SoftwareVersion,
		TypeInteractions: []string{"read", "vread", "update", "delete", "history-instance",
			"history-type", "create", "search-type"},
		SystemInteractions: []string{"transaction", "batch", "history-system"},
	})
	b, err := json.Marshal(cs)
	if err != nil {
		return nil, fmt.Errorf("encode capability statement: %w", err)
	}
	return b, nil
}
