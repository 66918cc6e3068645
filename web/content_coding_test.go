package web_test

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/fhirsub/fhirsub/web"
)

func compressed(t *testing.T, coding string, body []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w io.WriteCloser
	switch coding {
	case "deflate":
		w = zlib.NewWriter(&buf)
	default:
		w = gzip.NewWriter(&buf)
	}
	if _, err := w.Write(body); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestContentCodings: a body sent in gzip or deflate is read as what it
// decompresses to, within the body limit of what it decompresses to; a
// body that is not in its declared coding is a 400, and a coding the
// server cannot read a 415 naming those it can, never JSON read from
// compressed bytes nor a compressed body stored as sent.
func TestContentCodings(t *testing.T) {
	s := mustServer(t, func(c *web.Config) { c.MaxBodyBytes = 4096 })
	raw, err := json.Marshal(patient("Zipped"))
	if err != nil {
		t.Fatal(err)
	}
	for _, coding := range []string{"gzip", "x-gzip", "deflate", "GZIP"} {
		r := s.do("POST", "/Patient", compressed(t, strings.ToLower(coding), raw), "Content-Encoding", coding).wantStatus(t, http.StatusCreated)
		if got := str(r.JSON, "name", 0, "family"); got != "Zipped" {
			t.Errorf("%s: family %q, want Zipped: %s", coding, got, r.Body)
		}
	}
	s.do("POST", "/Patient", raw, "Content-Encoding", "identity").wantStatus(t, http.StatusCreated)

	// a Bundle and a JSON Patch go through the same door
	bundle, _ := json.Marshal(transaction(postEntry(patient("ZippedTx"))))
	s.do("POST", "/", compressed(t, "gzip", bundle), "Content-Encoding", "gzip").wantStatus(t, http.StatusOK)
	id := str(s.do("POST", "/Patient", patient("ToPatch")).wantStatus(t, http.StatusCreated).JSON, "id")
	r := s.do("PATCH", "/Patient/"+id, compressed(t, "gzip", []byte(`[{"op":"add","path":"/active","value":true}]`)),
		"Content-Type", "application/json-patch+json", "Content-Encoding", "gzip").wantStatus(t, http.StatusOK)
	if str(r.JSON, "active") != "true" {
		t.Errorf("a gzip JSON Patch: %s", r.Body)
	}

	s.do("POST", "/Patient", raw, "Content-Encoding", "gzip").wantOutcome(t, http.StatusBadRequest, "gzip")
	s.do("POST", "/Patient", raw, "Content-Encoding", "deflate").wantOutcome(t, http.StatusBadRequest, "zlib")
	for _, coding := range []string{"br", "compress", "gzip, br", "zstd"} {
		r := s.do("POST", "/Patient", raw, "Content-Encoding", coding)
		r.wantOutcome(t, http.StatusUnsupportedMediaType, "Content-Encoding")
		if got := r.Header.Get("Accept-Encoding"); got != "gzip, deflate" {
			t.Errorf("%s: Accept-Encoding %q, want the codings the server reads", coding, got)
		}
	}
	// a request without a body is not refused for a Content-Encoding it
	// does not use
	s.do("GET", "/Patient/"+id, nil, "Content-Encoding", "br").wantStatus(t, http.StatusOK)

	// 200 KB that compress to a few hundred bytes: the limit is on what
	// the body decompresses to; so is a run of empty gzip members, which
	// decompress to nothing, on the bytes sent
	bomb := compressed(t, "gzip", []byte(`{"resourceType":"Patient","name":[{"family":"`+strings.Repeat("x", 200_000)+`"}]}`))
	if len(bomb) >= 4096 {
		t.Fatalf("the bomb is %d bytes compressed, want it under the limit", len(bomb))
	}
	s.do("POST", "/Patient", bomb, "Content-Encoding", "gzip").wantOutcome(t, http.StatusRequestEntityTooLarge, "4096")
	empty := compressed(t, "gzip", nil)
	s.do("POST", "/Patient", bytes.Repeat(empty, 4096/len(empty)+1), "Content-Encoding", "gzip").wantOutcome(t, http.StatusRequestEntityTooLarge, "4096")

	if got := str(s.do("GET", "/Patient?name:exact=Zipped", nil).wantStatus(t, http.StatusOK).JSON, "total"); got != "5" {
		t.Errorf("%s Patients named Zipped, want the 5 sent readable", got)
	}
}
