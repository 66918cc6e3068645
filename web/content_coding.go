package web

import (
	"compress/gzip"
	"compress/zlib"
	"io"
	"net/http"
	"strings"
)

// acceptedCodings are the content codings a request body may be sent in,
// as a 415 answer's Accept-Encoding names them (RFC 9110 §12.5.3).
const acceptedCodings = "gzip, deflate"

// decodeContent makes r's body read as what was sent before its
// Content-Encoding: a gzip or deflate body is decompressed as it is read,
// with the size limit applied to what it decompresses to (a small body can
// inflate to gigabytes). Any other coding is refused with 415 rather than
// read as JSON it is not.
func decodeContent(w http.ResponseWriter, r *http.Request, limit int64) error {
	coding := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding")))
	var open func(io.Reader) (io.ReadCloser, error)
	switch coding {
	case "", "identity":
		return nil
	case "gzip", "x-gzip":
		open = func(raw io.Reader) (io.ReadCloser, error) { return gzip.NewReader(raw) }
	case "deflate":
		open = zlib.NewReader
	default:
		w.Header().Set("Accept-Encoding", acceptedCodings)
		return errorf(http.StatusUnsupportedMediaType, "not-supported",
			"Content-Encoding %q is not supported: send the body as it is, or in gzip or deflate", r.Header.Get("Content-Encoding"))
	}
	r.Body = http.MaxBytesReader(w, &inflating{raw: r.Body, open: open}, limit)
	r.Header.Del("Content-Encoding")
	r.Header.Del("Content-Length")
	r.ContentLength = -1
	return nil
}

// inflating decompresses a body on its first read, so that a body that is
// not in its coding fails where bodies are read, with their error.
type inflating struct {
	raw  io.ReadCloser
	open func(io.Reader) (io.ReadCloser, error)
	dec  io.ReadCloser
	err  error
}

func (b *inflating) Read(p []byte) (int, error) {
	if b.dec == nil && b.err == nil {
		b.dec, b.err = b.open(b.raw)
	}
	if b.err != nil {
		return 0, b.err
	}
	return b.dec.Read(p)
}

func (b *inflating) Close() error {
	if b.dec != nil {
		_ = b.dec.Close() // the decompressor holds nothing the raw body does not
	}
	return b.raw.Close()
}
