package web

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/fhirsub/fhirsub/conformance/smart"
	"github.com/fhirsub/fhirsub/fhirstore"
)

// longHistory is a store whose one resource has more versions than _at
// may read; only History is called.
type longHistory struct {
	Store
	calls int
}

func (h *longHistory) History(_ context.Context, req fhirstore.HistoryRequest) (*fhirstore.Page, error) {
	h.calls++
	v := &fhirstore.Resource{Type: req.Type, ID: req.ID, VersionID: "1", LastUpdated: time.Now(), Body: []byte(`{}`)}
	return &fhirstore.Page{Total: maxFilterPages*fhirstore.MaxCount + 1, Resources: []*fhirstore.Resource{v}}, nil
}

// TestHistoryAtIsBounded: _at reads one resource's versions in full, so a
// resource with more versions than the restricted scans may read is
// refused as too costly after the first page, not read to the end.
func TestHistoryAtIsBounded(t *testing.T) {
	store := &longHistory{}
	s := &Server{store: store}
	ctx := smart.NewContext(context.Background(), smart.Full())
	_, err := s.historyAt(ctx, fhirstore.HistoryRequest{Type: "Patient", ID: "busy", Count: 10}, period{from: time.Unix(0, 0), to: time.Now()})
	var e *Error
	if !errors.As(err, &e) || e.Status != 403 || e.Code != "too-costly" || store.calls != 1 {
		t.Fatalf("historyAt of %d versions: %v after %d store calls, want a too-costly refusal after 1", maxFilterPages*fhirstore.MaxCount+1, err, store.calls)
	}
}
