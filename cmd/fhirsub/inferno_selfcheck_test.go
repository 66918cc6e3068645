package main

import (
	"encoding/json"
	"testing"
)

// TestInfernoChecksCatch proves the port's checks can fail: a conformant
// id-only event notification passes them, and each broken variant (one
// defect the Inferno suite looks for) is caught.
func TestInfernoChecksCatch(t *testing.T) {
	good := func() map[string]any {
		return map[string]any{
			"resourceType": "Bundle", "type": "history", "timestamp": "2026-01-01T10:00:00Z",
			"entry": []any{
				map[string]any{
					"fullUrl": "urn:uuid:0c4f6a9e-7f7e-4b5b-9a52-6a2d8f1c3e11",
					"resource": map[string]any{
						"resourceType": "Parameters",
						"meta":         map[string]any{"profile": []any{statusProfile}},
						"parameter": []any{
							map[string]any{"name": "subscription", "valueReference": map[string]any{"reference": "http://h/Subscription/s1"}},
							map[string]any{"name": "status", "valueCode": "active"},
							map[string]any{"name": "type", "valueCode": "event-notification"},
							map[string]any{"name": "events-since-subscription-start", "valueString": "1"},
							map[string]any{"name": "notification-event", "part": []any{
								map[string]any{"name": "event-number", "valueString": "1"},
								map[string]any{"name": "timestamp", "valueInstant": "2026-01-01T10:00:00.123Z"},
								map[string]any{"name": "focus", "valueReference": map[string]any{"reference": "http://h/Observation/o1"}},
							}},
						},
					},
					"request":  map[string]any{"method": "GET", "url": "http://h/Subscription/s1/$status"},
					"response": map[string]any{"status": "200"},
				},
				map[string]any{"fullUrl": "http://h/Observation/o1",
					"request": map[string]any{"method": "POST", "url": "Observation"}, "response": map[string]any{"status": "201"}},
			},
		}
	}
	run := func(b map[string]any) findings {
		var f findings
		raw, _ := json.Marshal(b)
		if got := checkNotification(&f, raw, "event-notification", "s1", "active"); got != nil {
			checkEventCommon(&f, got, "id-only")
			checkIDOnly(&f, got, "Observation")
		}
		return f
	}
	status := func(b map[string]any) map[string]any {
		return jmap(jmap(jlist(b["entry"])[0])["resource"])
	}
	param := func(b map[string]any, name string) map[string]any {
		return params(jlist(status(b)["parameter"]), name)[0]
	}
	breaks := map[string]func(b map[string]any){
		"searchset bundle": func(b map[string]any) { b["type"] = "searchset" },
		"status error":     func(b map[string]any) { param(b, "status")["valueCode"] = "error" },
		"no response":      func(b map[string]any) { delete(jmap(jlist(b["entry"])[1]), "response") },
		"wrong $status url": func(b map[string]any) {
			jmap(jmap(jlist(b["entry"])[0])["request"])["url"] = "http://h/Subscription/s2/$status"
		},
		"count as a number": func(b map[string]any) { param(b, "events-since-subscription-start")["valueString"] = 1 },
		"timestamp no zone": func(b map[string]any) {
			params(jlist(param(b, "notification-event")["part"]), "timestamp")[0]["valueInstant"] = "2026-01-01T10:00:00"
		},
		"relative focus": func(b map[string]any) {
			params(jlist(param(b, "notification-event")["part"]), "focus")[0]["valueReference"] = ref("Observation/o1")
		},
		"id-only with resource": func(b map[string]any) {
			jmap(jlist(b["entry"])[1])["resource"] = map[string]any{"resourceType": "Observation", "id": "o1"}
		},
		"no profile":     func(b map[string]any) { delete(status(b), "meta") },
		"handshake type": func(b map[string]any) { param(b, "type")["valueCode"] = "handshake" },
	}
	f := run(good())
	caught := 0
	for name, br := range breaks {
		b := good()
		br(b)
		if len(run(b).errors) > 0 {
			caught++
		} else {
			t.Errorf("%s: not caught", name)
		}
	}
	t.Logf("inferno checks: conformant notification errors=%d, broken variants caught=%d/%d", len(f.errors), caught, len(breaks))
	if len(f.errors) > 0 {
		t.Errorf("a conformant notification fails the checks: %v", f.errors)
	}
}
