package web_test

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/fhirsub/fhirsub/fhirstore"
	"github.com/fhirsub/fhirsub/fhirstore/sqlite"
	"github.com/fhirsub/fhirsub/web"
)

// refusal is a domain error that knows its status, as subscriptions' are.
type refusal struct{ msg string }

func (r refusal) Error() string        { return r.msg }
func (r refusal) HTTPStatus() int      { return http.StatusUnprocessableEntity }
func (r refusal) IssueCode() string    { return "business-rule" }
func (r refusal) Expression() []string { return []string{"SubscriptionTopic.title"} }

// recorder is a function-field fake of web.Interceptor.
type recorder struct {
	mu        sync.Mutex
	committed []string
	validate  func(body map[string]any, current *fhirstore.Resource) error
}

func (r *recorder) Validate(_ context.Context, body map[string]any, current *fhirstore.Resource) error {
	return r.validate(body, current)
}

func (r *recorder) Committed(_ context.Context, res *fhirstore.Resource, in fhirstore.Interaction) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.committed = append(r.committed, string(in)+" "+res.Type+"/"+res.VersionID)
	return nil
}

func TestInterceptorsValidateAndObserveWrites(t *testing.T) {
	var sawCurrent string
	rec := &recorder{validate: func(body map[string]any, current *fhirstore.Resource) error {
		if current != nil {
			sawCurrent = current.VersionID
		}
		if body["title"] == "plaid" {
			return refusal{"plaid topics are not allowed"}
		}
		return nil
	}}
	s := mustServer(t, func(c *web.Config) {
		c.Interceptors = map[string]web.Interceptor{"SubscriptionTopic": rec}
		c.ExtraTypes = []string{"SubscriptionTopic"}
	})
	s.do("POST", "/SubscriptionTopic", map[string]any{"resourceType": "SubscriptionTopic", "title": "plaid"}).
		wantOutcome(t, http.StatusUnprocessableEntity, "plaid", "business-rule", "SubscriptionTopic.title")
	r := s.do("POST", "/SubscriptionTopic", map[string]any{"resourceType": "SubscriptionTopic", "title": "red"}).wantStatus(t, http.StatusCreated)
	id := str(r.JSON, "id")
	r.JSON["title"] = "blue"
	s.do("PUT", "/SubscriptionTopic/"+id, r.JSON).wantStatus(t, http.StatusOK)
	if sawCurrent != "1" {
		t.Errorf("Validate saw current version %q, want 1", sawCurrent)
	}
	s.do("DELETE", "/SubscriptionTopic/"+id, nil).wantStatus(t, http.StatusOK)
	want := []string{"create SubscriptionTopic/1", "update SubscriptionTopic/2", "delete SubscriptionTopic/3"}
	if len(rec.committed) != len(want) {
		t.Fatalf("committed %v, want %v", rec.committed, want)
	}
	for i := range want {
		if rec.committed[i] != want[i] {
			t.Errorf("committed[%d] = %q, want %q", i, rec.committed[i], want[i])
		}
	}
	// An extra type without an interceptor is refused at construction.
	db, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(t.TempDir(), "x.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := web.New(web.Config{Store: db, BaseURL: "http://x", ExtraTypes: []string{"SubscriptionTopic"}}); err == nil || !strings.Contains(err.Error(), "interceptor") {
		t.Errorf("web.New with an extra type without interceptor: %v", err)
	}
	if _, err := web.New(web.Config{Store: db, BaseURL: "http://x", ExtraTypes: []string{"Widget"}}); err == nil || !strings.Contains(err.Error(), "Widget") {
		t.Errorf("web.New with an unknown extra type: %v", err)
	}
}
