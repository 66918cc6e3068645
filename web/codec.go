package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"strings"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/labstack/echo/v4"

	"github.com/fhirsub/fhirsub/conformance/schema"
	"github.com/fhirsub/fhirsub/fhirstore"
)

const fhirJSON = "application/fhir+json; charset=utf-8"

// limits caps request bodies and refuses formats other than JSON before any
// handler runs.
func (s *Server) limits(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if r.Body != nil {
			sent := r.ContentLength != 0 // -1: chunked
			r.Body = http.MaxBytesReader(c.Response(), r.Body, s.cfg.MaxBodyBytes)
			if sent {
				if err := decodeContent(c.Response(), r, s.cfg.MaxBodyBytes); err != nil {
					return err
				}
			}
		}
		if f := c.QueryParam("_format"); f != "" && !jsonFormat(f) {
			return errorf(http.StatusNotAcceptable, "not-supported", "_format %q is not supported: this server speaks application/fhir+json only", f)
		}
		if acc := r.Header.Get("Accept"); acc != "" && !acceptsJSON(acc) {
			return errorf(http.StatusNotAcceptable, "not-supported", "Accept %q is not supported: this server speaks application/fhir+json of FHIR R4 (fhirVersion 4.0) only", acc)
		}
		if im, ok := r.Header["If-Match"]; ok {
			if len(im) != 1 || !validIfMatch(im[0]) {
				return errorf(http.StatusBadRequest, "invalid", "If-Match %q is not one version ETag (W/\"3\", \"3\" or 3)", strings.Join(im, ", "))
			}
		}
		return next(c)
	}
}

// validIfMatch reports whether an If-Match value names one version: W/"3",
// "3" or 3 with a FHIR id as the version. A value that names none (`"`,
// `W/`, `*`, a list) would otherwise be read as no If-Match at all, and
// the write would go through unconditionally.
func validIfMatch(v string) bool {
	v = strings.TrimSpace(v)
	v = strings.TrimPrefix(v, "W/")
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
	}
	if v == "" || len(v) > 64 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

func jsonFormat(f string) bool {
	switch strings.ToLower(strings.TrimSpace(f)) {
	case "json", "application/json", "application/fhir+json", "application/json+fhir":
		return true
	}
	return false
}

func acceptsJSON(accept string) bool {
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		if v, ok := params["fhirversion"]; ok && !fhirR4(v) {
			continue // another FHIR version: not what this server answers
		}
		switch mt {
		case "*/*", "application/*", "application/json", "application/fhir+json", "application/json+fhir", "text/*", "text/html", "text/plain":
			return true
		}
	}
	return false
}

// checkSchema validates a decoded R4 resource against the R4 JSON schema.
func checkSchema(obj map[string]any) error {
	return checkSchemaErr(schema.Validate(obj))
}

// checkSchemaErr is the answer to a schema.Validate error (nil for nil).
func checkSchemaErr(err error) error {
	if err == nil {
		return nil
	}
	var ve *schema.Error
	if errors.As(err, &ve) {
		return &Error{Status: http.StatusBadRequest, Code: "structure", Message: "resource failed validation", Err: err}
	}
	return &Error{Status: http.StatusBadRequest, Code: "invalid", Message: err.Error(), Err: err}
}

// readJSON reads the body and decodes one JSON object (numbers kept as
// json.Number).
func (s *Server) readJSON(c echo.Context) (map[string]any, error) {
	r := c.Request()
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, params, err := mime.ParseMediaType(ct)
		if err != nil || !jsonFormat(mt) {
			return nil, errorf(http.StatusUnsupportedMediaType, "not-supported", "Content-Type %q is not supported: send application/fhir+json", ct)
		}
		if err := utf8Charset(params); err != nil {
			return nil, err
		}
	}
	body, err := readBody(r)
	if err != nil {
		return nil, err
	}
	return decodeObject(body)
}

// utf8Charset refuses a JSON body declared in a charset other than UTF-8,
// the only one FHIR JSON (and RFC 8259 between systems) uses: its bytes
// would otherwise be read as UTF-8 regardless; and one declared of a FHIR
// version other than R4 (R4 http.html, the fhirVersion parameter: 415).
func utf8Charset(params map[string]string) error {
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8") {
		return errorf(http.StatusUnsupportedMediaType, "not-supported", "charset %q is not supported: FHIR JSON is UTF-8", cs)
	}
	if v, ok := params["fhirversion"]; ok && !fhirR4(v) {
		return errorf(http.StatusUnsupportedMediaType, "not-supported", "fhirVersion %q is not supported: this server speaks FHIR R4 (4.0)", v)
	}
	return nil
}

// fhirR4 reports whether a fhirVersion parameter names R4: 4.0, or a
// patch release of it (4.0.1).
func fhirR4(v string) bool {
	v = strings.TrimSpace(v)
	return v == "4.0" || strings.HasPrefix(v, "4.0.")
}

// readBody reads a request's body, whose size limits caps: too large a
// body, one that does not arrive in time and a broken one each get their
// own error.
func readBody(r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, mbe
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, errorf(http.StatusRequestTimeout, "timeout", "the request body did not arrive within the server's read timeout")
		}
		return nil, errorf(http.StatusBadRequest, "invalid", "cannot read request body: %v", err)
	}
	return body, nil
}

// formBodyOnly refuses a POST _search whose body is not a form: the
// parameters of any other body would be ignored, and the search would
// answer with more than was asked for.
func formBodyOnly(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	if mt, _, err := mime.ParseMediaType(ct); err == nil && (mt == "application/x-www-form-urlencoded" || mt == "multipart/form-data") {
		return nil
	}
	body, err := readBody(r)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(body)) > 0 {
		return errorf(http.StatusUnsupportedMediaType, "not-supported",
			"POST _search takes its parameters in the URL or in an application/x-www-form-urlencoded body, not a body of Content-Type %q", ct)
	}
	return nil
}

// utf8BOM is the byte order mark some clients put before a JSON text;
// RFC 8259 §8.1 lets a parser ignore it.
var utf8BOM = []byte("\xef\xbb\xbf")

// decodeObject parses a JSON document that must be a single object. The
// document must also be one that every JSON parser reads the same way
// (RFC 7493): no object with a member twice, no escaped surrogate without
// its pair. encoding/json would keep the last of two members and turn a
// lone surrogate into U+FFFD, so the stored resource would not be the one
// sent, and silently.
func decodeObject(body []byte) (map[string]any, error) {
	body = bytes.TrimPrefix(body, utf8BOM)
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, errorf(http.StatusBadRequest, "invalid", "request body is empty")
	}
	if !utf8.Valid(body) {
		return nil, errorf(http.StatusBadRequest, "invalid", "request body is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, errorf(http.StatusBadRequest, "invalid", "malformed JSON: %s", jsonErrorText(err, body))
	}
	// Decoder.More would let a closing bracket after the object pass
	if len(bytes.TrimLeft(body[dec.InputOffset():], " \t\r\n")) > 0 {
		return nil, errorf(http.StatusBadRequest, "invalid", "malformed JSON: unexpected data after the resource")
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, errorf(http.StatusBadRequest, "invalid", "malformed JSON: a FHIR resource must be a JSON object")
	}
	if err := unambiguous(body); err != nil {
		return nil, err
	}
	return obj, nil
}

// unambiguous refuses a JSON text, already known to be well formed, that
// is not I-JSON (RFC 7493): a member name twice in one object, or an
// escaped surrogate without its pair. Parsers differ on those, and
// encoding/json would keep the last member and turn the surrogate into
// U+FFFD.
func unambiguous(body []byte) error {
	if jsontext.Value(body).IsValid() {
		return nil
	}
	_, err := jsontext.NewDecoder(bytes.NewReader(body)).ReadValue()
	var se *jsontext.SyntacticError
	if !errors.As(err, &se) {
		return errorf(http.StatusBadRequest, "invalid", "malformed JSON: a duplicate member or a lone surrogate escape")
	}
	at := string(se.JSONPointer)
	if at == "" {
		at = "/"
	}
	if errors.Is(err, jsontext.ErrDuplicateName) {
		return errorf(http.StatusBadRequest, "invalid", "malformed JSON: the member %s appears twice in its object (a name may appear once)", at)
	}
	return errorf(http.StatusBadRequest, "invalid", "malformed JSON: %s, at %s", se.Err, at)
}

func jsonErrorText(err error, body []byte) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("%v at byte %d", se, se.Offset)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return fmt.Sprintf("unexpected end of input after %d bytes", len(body))
	}
	return err.Error()
}

// writeJSON encodes v as FHIR JSON without HTML escaping.
func writeJSON(c echo.Context, status int, v any) error {
	var out []byte
	var err error
	if m, ok := v.(map[string]any); ok {
		out, err = fhirstore.Encode(m) // resourceType first, as every resource the server writes
	} else {
		out, err = fhirstore.EncodeJSON(v)
	}
	if err != nil {
		return fmt.Errorf("encode response: %w", err)
	}
	return c.Blob(status, fhirJSON, out)
}
