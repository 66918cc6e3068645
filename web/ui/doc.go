// Package ui serves fhirsub's live dashboard: the static page and its ES
// modules (embedded from static/) and the @fhirsub/client module files the
// dashboard imports (embedded by package web/client). There is no build
// step; the files are served as they are, with ETags for revalidation.
//
// Mount Handler() on each of Paths (exact GET paths, "*" a wildcard tail):
//
//	/           the dashboard page
//	/ui/*       dashboard assets (app.js, app.css, …)
//	/client/*   the @fhirsub/client module files (index.js, client.js, …)
//
// Under /ui/ it also answers two JSON endpoints (session.go): /ui/auth tells
// the page whether it must sign in, and /ui/dev-login mints a development
// token when Options.DevLogin is set (off unless the operator enables it).
// The page keeps its token in sessionStorage and sends it with every REST
// call (Authorization) and websocket (access_token).
//
// The handler is immutable after creation and safe for concurrent use.
package ui
