// Package client holds @fhirsub/client, the browser side of fhirsub's live
// channel: an npm-style ES module package (client.js, hooks.js and their
// TypeScript declarations) with no build step. The Go package only embeds
// the module files so that the server can serve them to the dashboard
// unchanged; FS is read-only and safe for concurrent use.
//
// The JavaScript tests run with `npm test --prefix web/client` (node's test
// runner); npm_test.go runs them from `go test`.
package client
