package main

import "fmt"

// complete finishes the oldest open order: the ServiceRequest becomes
// completed, its results are written (lab) and a DiagnosticReport sums
// them up. critical forces a critical value among the results.
func (g *traffic) complete(critical bool) {
	i := -1
	for j, o := range g.orders {
		if o.panel != nil || !critical {
			i = j
			break
		}
	}
	if i < 0 {
		g.then(g.labOrder)
		if critical {
			g.step-- // retry the critical completion once the order exists
		}
		return
	}
	o := g.orders[i]
	g.orders = append(g.orders[:i], g.orders[i+1:]...)
	ref := "ServiceRequest/" + o.res["id"].(string)
	g.then(func() write {
		done := make(map[string]any, len(o.res))
		for k, v := range o.res {
			done[k] = v
		}
		done["status"] = "completed"
		return write{res: done}
	})
	var results []any
	abnormal := false
	if o.panel != nil {
		for n, t := range o.panel.tests {
			crit := (critical && n == 0) || g.rnd.IntN(100) < 3
			g.then(func() write {
				obs, interp := g.observation(t, o.patient, crit, ref)
				return write{res: obs, done: func(id string) {
					results = append(results, map[string]any{"reference": "Observation/" + id})
					if interp != "N" {
						abnormal = true
					}
					if interp == "HH" || interp == "LL" {
						msg := fmt.Sprintf("Critical %s %v %s called to %s, read back confirmed.", t.display, obs["valueQuantity"].(map[string]any)["value"], t.unit, g.pick(clinicians))
						g.then(func() write { return write{res: g.communication(o.patient, msg)} })
					}
				}}
			})
		}
	}
	g.then(func() write {
		dr := map[string]any{
			"resourceType":      "DiagnosticReport",
			"status":            "final",
			"subject":           map[string]any{"reference": o.patient},
			"basedOn":           []any{map[string]any{"reference": ref}},
			"effectiveDateTime": g.ts(),
			"issued":            g.ts(),
		}
		if o.panel != nil {
			dr["category"] = []any{coding("http://terminology.hl7.org/CodeSystem/v2-0074", "LAB", "Laboratory")}
			dr["code"] = coding(loinc, o.panel.code, o.panel.display)
			if len(results) > 0 {
				dr["result"] = results
			}
			if abnormal {
				dr["conclusion"] = "Abnormal results; see flagged values."
			}
		} else {
			dr["category"] = []any{coding("http://terminology.hl7.org/CodeSystem/v2-0074", "RAD", "Radiology")}
			dr["code"] = map[string]any{"coding": []any{map[string]any{"system": loinc, "code": "18748-4", "display": "Diagnostic imaging study"}}, "text": o.imaging[1]}
			dr["conclusion"] = o.imaging[2]
		}
		return write{res: dr}
	})
}

func (g *traffic) medication() write {
	m := medications[g.rnd.IntN(len(medications))]
	mr := map[string]any{
		"resourceType":              "MedicationRequest",
		"status":                    "active",
		"intent":                    "order",
		"medicationCodeableConcept": coding(rxnorm, m[0], m[1]),
		"subject":                   map[string]any{"reference": g.patientRef()},
		"authoredOn":                g.ts(),
		"requester":                 map[string]any{"display": g.pick(clinicians)},
		"dosageInstruction":         []any{map[string]any{"text": []string{"1 tablet by mouth daily", "1 tablet by mouth twice daily", "1 tablet every 6 hours as needed for pain"}[g.rnd.IntN(3)]}},
	}
	return write{res: mr, done: func(id string) {
		mr["id"] = id
		g.meds = append(g.meds, mr)
	}}
}

// medStatus completes or stops the oldest active MedicationRequest.
func (g *traffic) medStatus() {
	if len(g.meds) == 0 {
		g.then(g.medication)
		return
	}
	mr := g.meds[0]
	g.meds = g.meds[1:]
	status := []string{"completed", "stopped", "on-hold"}[g.rnd.IntN(3)]
	g.then(func() write {
		up := make(map[string]any, len(mr))
		for k, v := range mr {
			up[k] = v
		}
		up["status"] = status
		return write{res: up}
	})
}

func (g *traffic) task() write {
	patient := g.patientRef()
	t := map[string]any{
		"resourceType": "Task",
		"status":       "requested",
		"intent":       "order",
		"priority":     []string{"routine", "urgent"}[g.rnd.IntN(2)],
		"code":         coding("http://hl7.org/fhir/CodeSystem/task-code", "fulfill", "Fulfill the focal request"),
		"for":          map[string]any{"reference": patient},
		"authoredOn":   g.ts(),
		"owner":        map[string]any{"display": g.pick(clinicians)},
	}
	t["description"] = []string{"Collect blood specimen", "Reassess pain score in 1 hour", "Repeat vital signs", "Review abnormal result with attending"}[g.rnd.IntN(4)]
	for _, o := range g.orders {
		if o.patient == patient {
			t["focus"] = map[string]any{"reference": "ServiceRequest/" + o.res["id"].(string)}
			break
		}
	}
	return write{res: t, done: func(id string) {
		t["id"] = id
		g.tasks = append(g.tasks, t)
	}}
}

// taskProgress moves the oldest open Task forward.
func (g *traffic) taskProgress() {
	if len(g.tasks) == 0 {
		g.then(g.task)
		return
	}
	t := g.tasks[0]
	next := "completed"
	if t["status"] == "requested" {
		next = "in-progress"
	} else {
		g.tasks = g.tasks[1:]
	}
	g.then(func() write {
		t["status"] = next
		up := make(map[string]any, len(t))
		for k, v := range t {
			up[k] = v
		}
		return write{res: up}
	})
}

var teamMessages = []string{
	"Patient asking for pain medication review.",
	"Family at bedside requesting update from the physician.",
	"Bed 12 ready for transfer to step-down unit.",
	"Pharmacy: please confirm renal dosing.",
	"Patient back from imaging, stable.",
}

func (g *traffic) communication(patient, text string) map[string]any {
	cat := "notification"
	if text == "" {
		text = g.pick(teamMessages)
	} else {
		cat = "alert"
	}
	return map[string]any{
		"resourceType": "Communication",
		"status":       "completed",
		"category":     []any{coding("http://terminology.hl7.org/CodeSystem/communication-category", cat, map[string]string{"alert": "Alert", "notification": "Notification"}[cat])},
		"subject":      map[string]any{"reference": patient},
		"sent":         g.ts(),
		"sender":       map[string]any{"display": g.pick(clinicians)},
		"payload":      []any{map[string]any{"contentString": text}},
	}
}
