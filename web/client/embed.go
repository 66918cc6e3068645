package client

import "embed"

// FS holds the module files of @fhirsub/client as served to browsers:
// index.js, client.js, hooks.js, their .d.ts declarations and package.json.
//
//go:embed *.js *.d.ts package.json
var FS embed.FS
