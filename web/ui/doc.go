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
// The handler is immutable after creation and safe for concurrent use.
package ui
