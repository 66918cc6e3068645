package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"
)

// The demo's clinical content: codes are real LOINC / SNOMED CT / RxNorm
// codes, reference ranges are typical adult ranges.
const (
	loinc     = "http://loinc.org"
	snomed    = "http://snomed.info/sct"
	rxnorm    = "http://www.nlm.nih.gov/research/umls/rxnorm"
	ucum      = "http://unitsofmeasure.org"
	obsCat    = "http://terminology.hl7.org/CodeSystem/observation-category"
	interpSys = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
)

// test is one measured quantity with its normal and critical limits
// (NaN: no critical limit on that side).
type test struct {
	code, display, unit string
	low, high           float64
	critLow, critHigh   float64
	decimals            int
	vital               bool
}

var (
	potassium  = test{"2823-3", "Potassium [Moles/volume] in Serum or Plasma", "mmol/L", 3.5, 5.1, 2.5, 6.5, 1, false}
	sodium     = test{"2951-2", "Sodium [Moles/volume] in Serum or Plasma", "mmol/L", 136, 145, 120, 160, 0, false}
	glucose    = test{"2345-7", "Glucose [Mass/volume] in Serum or Plasma", "mg/dL", 70, 99, 40, 450, 0, false}
	creatinine = test{"2160-0", "Creatinine [Mass/volume] in Serum or Plasma", "mg/dL", 0.6, 1.3, math.NaN(), 7, 2, false}
	hemoglobin = test{"718-7", "Hemoglobin [Mass/volume] in Blood", "g/dL", 12, 17.5, 7, 20, 1, false}
	platelets  = test{"777-3", "Platelets [#/volume] in Blood by Automated count", "10*3/uL", 150, 400, 40, 1000, 0, false}
	leukocytes = test{"6690-2", "Leukocytes [#/volume] in Blood by Automated count", "10*3/uL", 4.5, 11, 1.5, 30, 1, false}
	troponin   = test{"6598-7", "Troponin T.cardiac [Mass/volume] in Serum or Plasma", "ng/mL", 0, 0.01, math.NaN(), 0.1, 3, false}
	lactate    = test{"32693-4", "Lactate [Moles/volume] in Blood", "mmol/L", 0.5, 2.2, math.NaN(), 4, 1, false}
	inr        = test{"6301-6", "INR in Platelet poor plasma by Coagulation assay", "{INR}", 0.8, 1.2, math.NaN(), 5, 1, false}

	vitals = []test{
		{"8867-4", "Heart rate", "/min", 60, 100, 40, 140, 0, true},
		{"9279-1", "Respiratory rate", "/min", 12, 20, 8, 30, 0, true},
		{"59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry", "%", 95, 100, 85, math.NaN(), 0, true},
		{"8310-5", "Body temperature", "Cel", 36.1, 37.5, 35, 40, 1, true},
		{"8480-6", "Systolic blood pressure", "mm[Hg]", 90, 130, 80, 180, 0, true},
	}
)

// panel is an orderable lab test and the results it produces.
type panel struct {
	code, display string
	tests         []test
}

var labPanels = []panel{
	{"58410-2", "CBC panel - Blood by Automated count", []test{hemoglobin, platelets, leukocytes}},
	{"51990-0", "Basic metabolic panel - Blood", []test{sodium, potassium, glucose, creatinine}},
	{"6598-7", "Troponin T.cardiac [Mass/volume] in Serum or Plasma", []test{troponin}},
	{"32693-4", "Lactate [Moles/volume] in Blood", []test{lactate}},
	{"34714-6", "INR in Blood by Coagulation assay", []test{inr}},
	{"2823-3", "Potassium [Moles/volume] in Serum or Plasma", []test{potassium}},
}

var imagingStudies = [][3]string{
	{"399208008", "Plain chest X-ray", "No acute cardiopulmonary process."},
	{"77477000", "Computed tomography", "No acute intracranial abnormality."},
	{"113091000", "Magnetic resonance imaging", "Findings consistent with degenerative change; no acute abnormality."},
	{"16310003", "Ultrasonography", "Normal study."},
}

var medications = [][2]string{
	{"314076", "lisinopril 10 MG Oral Tablet"},
	{"197361", "amlodipine 5 MG Oral Tablet"},
	{"313782", "acetaminophen 325 MG Oral Tablet"},
	{"1049621", "oxycodone hydrochloride 5 MG Oral Tablet"},
	{"308182", "amoxicillin 250 MG Oral Capsule"},
	{"861007", "metformin hydrochloride 500 MG Oral Tablet"},
}

var (
	givenNames  = []string{"Maria", "James", "Aiko", "Olu", "Sofia", "Liam", "Priya", "Mateo", "Grace", "Noah", "Fatima", "Elena", "Kwame", "Hana", "Lucas"}
	familyNames = []string{"Garcia", "Smith", "Tanaka", "Adeyemi", "Rossi", "Murphy", "Sharma", "Lopez", "Kim", "Nguyen", "Haddad", "Petrova", "Mensah", "Sato", "Silva"}
	clinicians  = []string{"Dr. A. Reyes", "Dr. J. Okafor", "Dr. L. Chen", "Dr. M. Novak", "RN K. Patel"}
)

// write is one resource to send; build runs when it is sent, so it can use
// the ids of earlier writes; done receives the stored id.
type write struct {
	res  map[string]any
	done func(id string)
}

// order is an open ServiceRequest waiting for its results.
type order struct {
	res     map[string]any
	patient string
	panel   *panel    // lab orders
	imaging [3]string // imaging orders
}

// traffic generates the demo's writes: a short script showing every kind
// first, then a weighted random mix.
type traffic struct {
	rnd      *rand.Rand
	now      func() time.Time
	patients []string
	queue    []func() write
	orders   []*order
	meds     []map[string]any
	tasks    []map[string]any
	step     int
}

func newTraffic(seed int64) *traffic {
	return &traffic{rnd: rand.New(rand.NewPCG(uint64(seed), 0x5eed)), now: time.Now}
}

func (g *traffic) addPatient(id string) { g.patients = append(g.patients, id) }

func (g *traffic) ts() string { return g.now().UTC().Format(time.RFC3339) }

func (g *traffic) pick(xs []string) string { return xs[g.rnd.IntN(len(xs))] }

func (g *traffic) patientRef() string { return "Patient/" + g.pick(g.patients) }

// next returns the next write, planning a new step when the queue is empty.
func (g *traffic) next() write {
	for len(g.queue) == 0 {
		g.plan()
	}
	w := g.queue[0]
	g.queue = g.queue[1:]
	return w()
}

func (g *traffic) then(ws ...func() write) { g.queue = append(g.queue, ws...) }

// script is the first round: every kind of traffic, one critical result.
var script = []string{"lab-order", "vitals", "complete-critical", "imaging-order", "medication", "task", "communication", "complete", "med-status", "task-progress"}

func (g *traffic) plan() {
	kind := ""
	if g.step < len(script) {
		kind = script[g.step]
	} else {
		kinds := []string{"vitals", "lab-order", "complete", "imaging-order", "medication", "med-status", "task", "task-progress", "communication"}
		weights := []int{30, 18, 18, 4, 8, 4, 7, 6, 5}
		r := g.rnd.IntN(100)
		for i, w := range weights {
			if r < w {
				kind = kinds[i]
				break
			}
			r -= w
		}
	}
	g.step++
	switch kind {
	case "vitals":
		g.then(func() write { return write{res: g.vital(g.patientRef())} })
	case "lab-order":
		g.then(g.labOrder)
	case "imaging-order":
		g.then(g.imagingOrder)
	case "complete", "complete-critical":
		g.complete(kind == "complete-critical")
	case "medication":
		g.then(g.medication)
	case "med-status":
		g.medStatus()
	case "task":
		g.then(g.task)
	case "task-progress":
		g.taskProgress()
	default:
		g.then(func() write { return write{res: g.communication(g.patientRef(), "")} })
	}
}

// coding is a CodeableConcept; its text is the short name clinicians use
// ("Potassium" for "Potassium [Moles/volume] in Serum or Plasma").
func coding(system, code, display string) map[string]any {
	return map[string]any{"coding": []any{map[string]any{"system": system, "code": code, "display": display}}, "text": shortName(display)}
}

func shortName(display string) string {
	for _, cut := range []string{" [", " in ", " - "} {
		if i := strings.Index(display, cut); i > 0 {
			display = display[:i]
		}
	}
	return display
}

func (g *traffic) patient() map[string]any {
	gender := []string{"female", "male"}[g.rnd.IntN(2)]
	birth := time.Date(1935+g.rnd.IntN(70), time.Month(1+g.rnd.IntN(12)), 1+g.rnd.IntN(28), 0, 0, 0, 0, time.UTC)
	return map[string]any{
		"resourceType": "Patient",
		"identifier":   []any{map[string]any{"system": "urn:oid:2.16.840.1.113883.19.5", "value": fmt.Sprintf("MRN%07d", g.rnd.IntN(10000000))}},
		"active":       true,
		"name":         []any{map[string]any{"family": g.pick(familyNames), "given": []any{g.pick(givenNames)}}},
		"gender":       gender,
		"birthDate":    birth.Format("2006-01-02"),
	}
}

// measure draws a value of t: mostly normal, sometimes abnormal, critical
// when forced. It returns the value and its interpretation code.
func (g *traffic) measure(t test, critical bool) (float64, string) {
	span := t.high - t.low
	var v float64
	switch r := g.rnd.Float64(); {
	case critical && !math.IsNaN(t.critHigh) && (math.IsNaN(t.critLow) || g.rnd.IntN(2) == 0):
		v = t.critHigh + g.rnd.Float64()*span*0.5
	case critical:
		v = t.critLow - g.rnd.Float64()*span*0.3
	case r < 0.75:
		v = t.low + g.rnd.Float64()*span
	case r < 0.88:
		v = t.high + g.rnd.Float64()*span*0.3
	default:
		v = t.low - g.rnd.Float64()*span*0.2
	}
	if v < 0 {
		v = 0
	}
	p := math.Pow(10, float64(t.decimals))
	v = math.Round(v*p) / p
	switch {
	case !math.IsNaN(t.critHigh) && v >= t.critHigh:
		return v, "HH"
	case !math.IsNaN(t.critLow) && v <= t.critLow:
		return v, "LL"
	case v > t.high:
		return v, "H"
	case v < t.low:
		return v, "L"
	}
	return v, "N"
}

var interpDisplay = map[string]string{"HH": "Critical high", "LL": "Critical low", "H": "High", "L": "Low", "N": "Normal"}

func (g *traffic) observation(t test, patient string, critical bool, basedOn string) (map[string]any, string) {
	v, interp := g.measure(t, critical)
	cat, catDisplay := "laboratory", "Laboratory"
	if t.vital {
		cat, catDisplay = "vital-signs", "Vital Signs"
	}
	rng := map[string]any{"high": map[string]any{"value": t.high, "unit": t.unit, "system": ucum, "code": t.unit}}
	if t.low > 0 {
		rng["low"] = map[string]any{"value": t.low, "unit": t.unit, "system": ucum, "code": t.unit}
	}
	o := map[string]any{
		"resourceType":      "Observation",
		"status":            "final",
		"category":          []any{coding(obsCat, cat, catDisplay)},
		"code":              coding(loinc, t.code, t.display),
		"subject":           map[string]any{"reference": patient},
		"effectiveDateTime": g.ts(),
		"issued":            g.ts(),
		"valueQuantity":     map[string]any{"value": v, "unit": t.unit, "system": ucum, "code": t.unit},
		"interpretation":    []any{coding(interpSys, interp, interpDisplay[interp])},
		"referenceRange":    []any{rng},
	}
	if basedOn != "" {
		o["basedOn"] = []any{map[string]any{"reference": basedOn}}
	}
	return o, interp
}

func (g *traffic) vital(patient string) map[string]any {
	o, _ := g.observation(vitals[g.rnd.IntN(len(vitals))], patient, g.rnd.IntN(100) < 2, "")
	return o
}

func (g *traffic) serviceRequest(patient string, category, catDisplay string, code map[string]any) map[string]any {
	prio := []string{"routine", "routine", "routine", "urgent", "stat"}[g.rnd.IntN(5)]
	return map[string]any{
		"resourceType": "ServiceRequest",
		"status":       "active",
		"intent":       "order",
		"priority":     prio,
		"category":     []any{coding(snomed, category, catDisplay)},
		"code":         code,
		"subject":      map[string]any{"reference": patient},
		"authoredOn":   g.ts(),
		"requester":    map[string]any{"display": g.pick(clinicians)},
	}
}

func (g *traffic) labOrder() write {
	p := &labPanels[g.rnd.IntN(len(labPanels))]
	patient := g.patientRef()
	sr := g.serviceRequest(patient, "108252007", "Laboratory procedure", coding(loinc, p.code, p.display))
	return write{res: sr, done: func(id string) {
		sr["id"] = id
		g.orders = append(g.orders, &order{res: sr, patient: patient, panel: p})
	}}
}

func (g *traffic) imagingOrder() write {
	s := imagingStudies[g.rnd.IntN(len(imagingStudies))]
	patient := g.patientRef()
	sr := g.serviceRequest(patient, "363679005", "Imaging", coding(snomed, s[0], s[1]))
	return write{res: sr, done: func(id string) {
		sr["id"] = id
		g.orders = append(g.orders, &order{res: sr, patient: patient, imaging: s})
	}}
}
