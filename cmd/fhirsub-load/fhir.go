package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// client speaks FHIR JSON to one server over keep-alive connections.
type client struct {
	base    string // http://127.0.0.1:port, no trailing slash
	http    *http.Client
	retries int // most retries of one write the server refused with Retry-After

	refused atomic.Int64 // answers 503/429 with Retry-After (each retry that followed counts)
}

// maxRetryWait caps the wait a Retry-After asks for: a server asking for
// longer is as good as down for a load run.
const maxRetryWait = 30 * time.Second

func newClient(base string, conns, retries int) *client {
	tr := &http.Transport{
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
	}
	return &client{base: strings.TrimRight(base, "/"), http: &http.Client{Transport: tr, Timeout: 30 * time.Second},
		retries: max(0, retries)}
}

func (c *client) close() { c.http.CloseIdleConnections() }

// refusals is how many times the server refused a write of this client
// with 503 or 429 and a Retry-After.
func (c *client) refusals() int { return int(c.refused.Load()) }

// create POSTs body to /{typ} and returns the new id (from the Location
// header) when the status is 201. A refusal with 503 or 429 and a
// Retry-After (backpressure) is counted, waited out and the same write
// retried, at most c.retries times; the last refusal is then the error.
func (c *client) create(ctx context.Context, typ string, body []byte) (id string, status int, err error) {
	for attempt := 0; ; attempt++ {
		var after time.Duration
		id, status, after, err = c.post(ctx, typ, body)
		if after < 0 {
			return id, status, err
		}
		c.refused.Add(1)
		if attempt >= c.retries {
			return id, status, fmt.Errorf("%w (refused %d times, retries exhausted)", err, attempt+1)
		}
		select {
		case <-time.After(min(after, maxRetryWait)):
		case <-ctx.Done():
			return "", status, errors.Join(err, ctx.Err())
		}
	}
}

// post makes one attempt of create. after is the wait the server asked
// for when it refused the write with 503 or 429 and a Retry-After, and
// negative otherwise.
func (c *client) post(ctx context.Context, typ string, body []byte) (id string, status int, after time.Duration, err error) {
	after = -1
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/"+typ, bytes.NewReader(body))
	if err != nil {
		return "", 0, after, err
	}
	req.Header.Set("Content-Type", "application/fhir+json")
	req.Header.Set("Accept", "application/fhir+json")
	resp, err := c.http.Do(req)
	if err != nil {
		return "", 0, after, err
	}
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return "", resp.StatusCode, after, err
	}
	if resp.StatusCode != http.StatusCreated {
		if resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusTooManyRequests {
			if d, ok := retryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
				after = d
			}
		}
		return "", resp.StatusCode, after, fmt.Errorf("POST /%s: status %d: %.300s", typ, resp.StatusCode, raw)
	}
	// …/{typ}/{id}/_history/{vid}
	loc := resp.Header.Get("Location")
	if i := strings.Index(loc, "/"+typ+"/"); i >= 0 {
		id, _, _ = strings.Cut(loc[i+len(typ)+2:], "/")
	}
	if id == "" {
		var r struct{ ID string }
		if err := json.Unmarshal(raw, &r); err != nil || r.ID == "" {
			return "", resp.StatusCode, after, fmt.Errorf("POST /%s: 201 without Location or id: %.300s", typ, raw)
		}
		id = r.ID
	}
	return id, resp.StatusCode, after, nil
}

// retryAfter reads a Retry-After header (RFC 9110 §10.2.3: delay seconds
// or an HTTP date, which is compared with now); ok is false when there is
// none or it cannot be read.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		return time.Duration(min(secs, int64(maxRetryWait/time.Second))) * time.Second, true
	}
	at, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(at.Sub(now), 0), true
}

// observation is a released vital-sign Observation of the patient: it
// fires the result-available topic on create.
func observation(patient string, n int) []byte {
	return []byte(`{"resourceType":"Observation","status":"final",` +
		`"category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"vital-signs"}]}],` +
		`"code":{"coding":[{"system":"http://loinc.org","code":"8867-4","display":"Heart rate"}]},` +
		`"subject":{"reference":"Patient/` + patient + `"},"effectiveDateTime":"2025-05-01T10:30:00Z",` +
		`"valueQuantity":{"value":` + strconv.Itoa(40+n%120) + `,"unit":"beats/minute","system":"http://unitsofmeasure.org","code":"/min"}}`)
}

// resultTopic is the built-in topic the load subscribes to: an
// Observation created with status final fires it.
const resultTopic = "https://fhirsub.org/SubscriptionTopic/result-available"

// topicSubscription is a Backport Subscription to resultTopic for the
// patient's Observations, id-only, on rest-hook (endpoint given) or
// websocket (endpoint "").
func topicSubscription(endpoint, patient string) []byte {
	return topicSubscriptionMax(endpoint, patient, 0)
}

// topicSubscriptionMax is topicSubscription with backport-max-count
// maxCount on its channel (0: none, the server's default).
func topicSubscriptionMax(endpoint, patient string, maxCount int) []byte {
	ch := map[string]any{
		"type":    "rest-hook",
		"payload": "application/fhir+json",
		"_payload": map[string]any{"extension": []any{map[string]any{
			"url":       "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-payload-content",
			"valueCode": "id-only",
		}}},
	}
	if maxCount > 0 {
		ch["extension"] = []any{map[string]any{
			"url":              "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-max-count",
			"valuePositiveInt": maxCount,
		}}
	}
	if endpoint == "" {
		ch["type"] = "websocket"
	} else {
		ch["endpoint"] = endpoint
	}
	s := map[string]any{
		"resourceType": "Subscription",
		"meta":         map[string]any{"profile": []any{"http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-subscription"}},
		"status":       "requested",
		"reason":       "fhirsub-load",
		"criteria":     resultTopic,
		"_criteria": map[string]any{"extension": []any{map[string]any{
			"url":         "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-filter-criteria",
			"valueString": "Observation?patient=Patient/" + patient,
		}}},
		"channel": ch,
	}
	b, _ := json.Marshal(s)
	return b
}

// createMany creates n resources at the given concurrency and returns
// their ids in order of i; it stops at the first error.
func createMany(ctx context.Context, c *client, typ string, n, conc int, body func(i int) []byte) ([]string, error) {
	ids := make([]string, n)
	var next atomic.Int64
	var first error
	var once sync.Once
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for range max(1, conc) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				id, _, err := c.create(ctx, typ, body(i))
				if err != nil {
					once.Do(func() { first = fmt.Errorf("create %s %d of %d: %w", typ, i+1, n, err); cancel() })
					return
				}
				ids[i] = id
			}
		}()
	}
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		first = ctx.Err()
	}
	return ids, first
}

// bindingToken calls $get-ws-binding-token for the subscription and
// returns the token and the websocket URL.
func (c *client) bindingToken(ctx context.Context, id string) (token, url string, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/Subscription/"+id+"/$get-ws-binding-token", nil)
	if err != nil {
		return "", "", err
	}
	req.Header.Set("Accept", "application/fhir+json")
	resp, err := c.http.Do(req)
	if err != nil {
		return "", "", err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", "", fmt.Errorf("$get-ws-binding-token: status %d: %.300s", resp.StatusCode, raw)
	}
	var p struct {
		Parameter []struct {
			Name        string `json:"name"`
			ValueString string `json:"valueString"`
			ValueURL    string `json:"valueUrl"`
		} `json:"parameter"`
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		return "", "", fmt.Errorf("$get-ws-binding-token: %w", err)
	}
	for _, q := range p.Parameter {
		switch q.Name {
		case "token":
			token = q.ValueString
		case "websocket-url":
			url = q.ValueURL
		}
	}
	if token == "" || url == "" {
		return "", "", errors.New("$get-ws-binding-token: no token or websocket-url")
	}
	return token, url, nil
}

// notice is what the load client needs of a notification Bundle.
type notice struct {
	Sub  string   // subscription id
	Type string   // handshake, heartbeat, event-notification, …
	IDs  []string // the id of each event's focus
}

type param struct {
	Name           string `json:"name"`
	ValueCode      string `json:"valueCode"`
	ValueReference *struct {
		Reference string `json:"reference"`
	} `json:"valueReference"`
	Part []param `json:"part"`
}

// parseNotice reads the status Parameters (first entry) of a Backport
// notification Bundle.
func parseNotice(raw []byte) (notice, error) {
	var b struct {
		ResourceType string `json:"resourceType"`
		Entry        []struct {
			Resource struct {
				ResourceType string  `json:"resourceType"`
				Parameter    []param `json:"parameter"`
			} `json:"resource"`
		} `json:"entry"`
	}
	var n notice
	if err := json.Unmarshal(raw, &b); err != nil {
		return n, err
	}
	if b.ResourceType != "Bundle" || len(b.Entry) == 0 || b.Entry[0].Resource.ResourceType != "Parameters" {
		return n, errors.New("not a notification Bundle")
	}
	last := func(ref string) string {
		ref, _, _ = strings.Cut(ref, "/_history/")
		return ref[strings.LastIndexByte(ref, '/')+1:]
	}
	for _, p := range b.Entry[0].Resource.Parameter {
		switch p.Name {
		case "subscription":
			if p.ValueReference != nil {
				n.Sub = last(p.ValueReference.Reference)
			}
		case "type":
			n.Type = p.ValueCode
		case "notification-event":
			for _, q := range p.Part {
				if q.Name == "focus" && q.ValueReference != nil {
					n.IDs = append(n.IDs, last(q.ValueReference.Reference))
				}
			}
		}
	}
	if n.Sub == "" || n.Type == "" {
		return n, errors.New("status Parameters without subscription or type")
	}
	return n, nil
}
