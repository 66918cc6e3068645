package web_test

import (
	"net/http"
	"testing"

	"github.com/fhirsub/fhirsub/web"
)

// TestMountedHandlersArePublicForGETOnly: a handler mounted at / (the
// dashboard) is served without a token on GET, but POST / (batch,
// transaction), GET / with a query (the search of all types) and any other
// method on a mounted path authenticate.
func TestMountedHandlersArePublicForGETOnly(t *testing.T) {
	a := hsAuthenticator(t)
	page := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`{"page":true}`)) })
	srv := mustServer(t, func(c *web.Config) {
		c.Auth = a
		c.Handlers = map[string]http.Handler{"/": page, "/ui/*": page, "/ws": page}
	})
	batch := map[string]any{"resourceType": "Bundle", "type": "batch"}
	srv.do("GET", "/", nil).wantStatus(t, http.StatusOK)
	srv.do("GET", "/ui/app.js", nil).wantStatus(t, http.StatusOK)
	srv.do("GET", "/ws", nil).wantStatus(t, http.StatusOK)
	srv.do("GET", "/metadata", nil).wantStatus(t, http.StatusOK)
	srv.do("POST", "/", batch).wantStatus(t, http.StatusUnauthorized)
	srv.do("POST", "/ws", "x").wantStatus(t, http.StatusUnauthorized)
	srv.do("PUT", "/ui/app.js", "x").wantStatus(t, http.StatusUnauthorized)
	// GET / with a query is the search of all types, not the page
	srv.do("GET", "/?_id=x", nil).wantStatus(t, http.StatusUnauthorized)
	srv.do("HEAD", "/?_id=x", nil).wantStatus(t, http.StatusUnauthorized)
	srv.do("POST", "/_search", "_id=x", "Content-Type", "application/x-www-form-urlencoded").wantStatus(t, http.StatusUnauthorized)
	admin := "Bearer " + signHS(t, claims("system/*.cruds"))
	if r := srv.do("GET", "/?_id=x", nil, "Authorization", admin).wantStatus(t, http.StatusOK); str(r.JSON, "type") != "searchset" {
		t.Fatalf("GET /?_id=x with a token: %s", r.Body)
	}
	r := srv.do("POST", "/", batch, "Authorization", admin).wantStatus(t, http.StatusOK)
	if str(r.JSON, "type") != "batch-response" {
		t.Fatalf("POST / with a token: %s", r.Body)
	}
}
