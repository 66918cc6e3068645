package ui

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/fhirsub/fhirsub/web/client"
)

//go:embed static
var static embed.FS

// Paths are the GET paths to mount Handler on; a trailing "*" matches any
// tail (echo's wildcard syntax).
var Paths = []string{"/", "/ui/*", "/client/*"}

// asset is one file ready to serve.
type asset struct {
	body  []byte
	ctype string
	etag  string
}

// handler serves a fixed set of files by URL path.
type handler struct {
	files map[string]asset
	start time.Time
	opts  Options
}

var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".json": "application/json",
	".ts":   "text/plain; charset=utf-8",
	".svg":  "image/svg+xml",
}

// Handler returns the handler serving the dashboard, its assets, the
// client library and the dashboard's two endpoints: GET /ui/auth (what
// sign-in the dashboard needs) and GET /ui/dev-login (see Options). It
// panics only if the embedded files are unreadable, which the package tests
// rule out.
func Handler(o Options) http.Handler {
	h, err := newHandler(static, client.FS)
	if err != nil {
		panic(fmt.Sprintf("ui: %v", err))
	}
	h.opts = o
	return h
}

func newHandler(ui, lib fs.FS) (*handler, error) {
	h := &handler{files: map[string]asset{}, start: time.Now()}
	if err := h.addTree(ui, "static", "/ui/"); err != nil {
		return nil, err
	}
	if err := h.addTree(lib, ".", "/client/"); err != nil {
		return nil, err
	}
	idx, ok := h.files["/ui/index.html"]
	if !ok {
		return nil, fmt.Errorf("static/index.html is missing")
	}
	h.files["/"] = idx
	return h, nil
}

func (h *handler) addTree(fsys fs.FS, root, prefix string) error {
	return fs.WalkDir(fsys, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("walk %s: %w", p, err)
		}
		if d.IsDir() {
			return nil
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return fmt.Errorf("read %s: %w", p, err)
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(p, root), "/")
		ext := path.Ext(rel)
		if strings.HasSuffix(rel, ".d.ts") {
			ext = ".ts"
		}
		ct, ok := contentTypes[ext]
		if !ok {
			ct = "application/octet-stream"
		}
		sum := sha256.Sum256(b)
		h.files[prefix+rel] = asset{body: b, ctype: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
}

// ServeHTTP serves GET and HEAD of the known files; anything else under its
// paths is 404 (unknown file) or 405 (other methods).
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	switch r.URL.Path {
	case "/ui/auth":
		h.authInfo(w)
		return
	case "/ui/dev-login":
		h.devLogin(w, r)
		return
	}
	a, ok := h.files[r.URL.Path]
	if !ok {
		http.Error(w, "not found: "+r.URL.Path, http.StatusNotFound)
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", a.ctype)
	hdr.Set("ETag", a.etag)
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("X-Content-Type-Options", "nosniff")
	if a.ctype == contentTypes[".html"] {
		hdr.Set("Content-Security-Policy", "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'")
		hdr.Set("Referrer-Policy", "no-referrer")
	}
	http.ServeContent(w, r, "", h.start, strings.NewReader(string(a.body)))
}
