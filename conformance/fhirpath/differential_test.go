package fhirpath

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fhirsub/fhirsub/conformance/definitions"
)

// The differential test runs every R4 search-parameter expression on every
// corpus resource of a matching type, in this engine and in fhirpath.js
// (npm fhirpath 5.2.2 with the R4 model), and compares the results.
//
// Normalisation: both results are compared as JSON. FHIR elements compare
// as their JSON values (numbers by value, so 72.0 = 72). System values
// compare as fhirpath.js prints them: a Date/DateTime/Time as its text, a
// Quantity as "5 'mg'", integers and decimals as numbers. The type of each
// item is compared too: fhirpath.js "FHIR.X" against Value.Type "X" and
// "System.X" against "System.X"; a backbone element ("Observation.component"
// here) is "FHIR.BackboneElement" there.
//
// resolve(): each engine uses its own. The oracle script serves the corpus
// over HTTP on loopback as fhirpath.js's fhirServerUrl, also answering for
// the absolute bases the corpus's references name (serverAliases; no other
// request leaves the machine); this engine gets an Env.Resolve over the
// same resources. So a reference to a corpus resource resolves to that
// resource in both, and what each engine does with any other reference is
// its own behaviour (this one yields a stub, fhirpath.js nothing), compared
// like everything else.
//
// Figures: a job agrees on a non-empty result, agrees on an empty one,
// fails in both engines (not counted as agreement: two errors prove
// nothing about values), or disagrees. They are printed before the test
// decides.

const oracleDir = "testdata/oracle"

// acceptedExceptions lists expressions (by exact text) where fhirpath.js
// departs from the FHIRPath specification, with the reason. Each is still
// run and printed, but does not fail the test.
var acceptedExceptions = map[string]string{
	// fhirpath.js defines %resource only inside a resource being
	// navigated, not at the top level of an evaluation; the FHIR
	// specification defines %resource as the resource the expression is
	// evaluated on.
	"%current.id = %resource.id": "fhirpath.js leaves %resource undefined at the top level",
	// The specification: for ~ on collections "comparison is not order
	// dependent"; fhirpath.js compares in order.
	"(1 | 2) ~ (2 | 1)": "fhirpath.js compares collections in order for ~",
	// The specification rounds to the precision of the less precise
	// operand (1.0 has one decimal: 1.06 rounds to 1.1); fhirpath.js parses
	// 1.0 as the JavaScript number 1 and compares at precision 0.
	"1.0 ~ 1.06": "fhirpath.js loses the precision of 1.0",
}

// Thresholds of the differential's figures, in percent of all jobs.
const (
	minNonEmptyAgreement = 50.0 // jobs whose result is non-empty in both engines and the same
	maxBothFail          = 2.0  // jobs where both engines fail
)

type oracleJob struct {
	Expression string         `json:"expression"`
	Resource   map[string]any `json:"resource"`
	Vars       map[string]any `json:"vars,omitempty"`
}

type oracleResult struct {
	Result []any    `json:"result"`
	Types  []string `json:"types"`
	Error  string   `json:"error"`
}

// serverAliases are the absolute base URLs the corpus's references use;
// both engines' resolve() find the corpus under them too.
var serverAliases = []string{"http://fhir.example.org/base", "https://fhir.example.org/r4"}

// oracleRun is the oracle's answer: one result per job, and how many
// requests its server answered (found: with a resource).
type oracleRun struct {
	Results []oracleResult `json:"results"`
	Served  int            `json:"served"`
	Found   int            `json:"found"`
}

// runOracle evaluates all jobs in one node process; server holds the
// resources resolve() can fetch, by "Type/id".
func runOracle(t *testing.T, server map[string]map[string]any, jobs []oracleJob) oracleRun {
	t.Helper()
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join(oracleDir, "node_modules", "fhirpath", "package.json"))
	}
	if err != nil {
		msg := fmt.Sprintf("fhirpath.js oracle not available (%v); install it with: npm ci --prefix conformance/fhirpath/%s", err, oracleDir)
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	in, err := json.Marshal(map[string]any{"server": server, "aliases": serverAliases, "jobs": jobs})
	if err != nil {
		t.Fatalf("encode jobs: %v", err)
	}
	cmd := exec.Command(node, filepath.Join(oracleDir, "oracle.js"))
	cmd.Env = append(os.Environ(), "TZ=UTC")
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("run oracle: %v\n%s", err, stderr.String())
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.UseNumber()
	var run oracleRun
	if err := dec.Decode(&run); err != nil {
		t.Fatalf("decode oracle output: %v", err)
	}
	if len(run.Results) != len(jobs) {
		t.Fatalf("oracle returned %d results for %d jobs", len(run.Results), len(jobs))
	}
	return run
}

func loadCorpus(t testing.TB) []map[string]any {
	t.Helper()
	files, err := filepath.Glob("testdata/corpus/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no corpus files: %v", err)
	}
	var out []map[string]any
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out = append(out, m)
	}
	return out
}

// normalise turns a result of this engine into what fhirpath.js prints.
func normalise(vs []Value) ([]any, []string) {
	data := make([]any, len(vs))
	types := make([]string, len(vs))
	for i, v := range vs {
		switch d := v.Data.(type) {
		case int64:
			data[i] = json.Number(fmt.Sprint(d))
		case Temporal:
			data[i] = d.String()
		case Quantity:
			data[i] = d.String()
		default:
			data[i] = d
		}
		switch {
		case v.Type == "" || strings.HasPrefix(v.Type, "System."):
			types[i] = v.Type
		case strings.Contains(v.Type, "."):
			types[i] = "FHIR.BackboneElement"
		default:
			types[i] = "FHIR." + v.Type
		}
	}
	return data, types
}

// diff explains how got differs from the oracle, or returns "".
func diff(got []Value, err error, want oracleResult) string {
	switch {
	case err != nil && want.Error != "":
		return ""
	case err != nil:
		return fmt.Sprintf("error here (%v), fhirpath.js gives %s", err, toJSON(want.Result))
	case want.Error != "":
		gotData, _ := normalise(got)
		return fmt.Sprintf("fhirpath.js fails (%s), here %s", want.Error, toJSON(gotData))
	}
	data, types := normalise(got)
	for i, w := range want.Result {
		// fhirpath.js writes UTC as "-00:00" in computed date-times
		if s, ok := w.(string); ok && i < len(types) && types[i] == TypeDateTime {
			want.Result[i] = strings.TrimSuffix(s, "-00:00") + map[bool]string{true: "Z"}[strings.HasSuffix(s, "-00:00")]
		}
	}
	if len(data) != len(want.Result) || !jsonEqual(anySlice(data), anySlice(want.Result), false) {
		return fmt.Sprintf("result %s, fhirpath.js %s", toJSON(data), toJSON(want.Result))
	}
	for i := range types {
		if types[i] == TypeDecimal && want.Types[i] == TypeInteger {
			// a JavaScript number has no decimal/integer distinction:
			// fhirpath.js calls 72.0 (parsed as 72) an Integer
			continue
		}
		if i < len(want.Types) && types[i] != "" && types[i] != want.Types[i] {
			return fmt.Sprintf("type of item %d is %s, fhirpath.js says %s", i, types[i], want.Types[i])
		}
	}
	return ""
}

func anySlice(v []any) []any {
	// round-trip through JSON so both sides are plain decoded JSON
	b, _ := json.Marshal(v)
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var out []any
	_ = dec.Decode(&out)
	return out
}

func toJSON(v any) string {
	b, _ := json.Marshal(v)
	return truncate(string(b), 300)
}

func appliesTo(sp *definitions.SearchParam, resourceType string) bool {
	for _, b := range sp.Base {
		if b == resourceType || b == "Resource" || (b == "DomainResource" && resourceType != "Bundle") {
			return true
		}
	}
	return false
}

// extraExpressions are more expressions run on every resource of the
// type named by their first identifier: operators and functions the
// search parameters do not use.
var extraExpressions = []string{
	"Patient.name.given.count()",
	"Patient.name.where(use = 'official').given.first() & ' ' & Patient.name.family.first()",
	"Patient.birthDate < @2000-01-01",
	"Patient.birthDate > @1974",
	"Patient.telecom.where(system = 'phone').value.distinct().count()",
	"Patient.name.given.exists($this.startsWith('P'))",
	"Patient.name.all(given.exists())",
	"Patient.deceased.exists() and Patient.deceased != false",
	"Patient.extension('http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex').value",
	"Patient.identifier.where(system.endsWith('ssn')).value.replace('-', '')",
	"Patient.telecom.select(system & ':' & value)",
	"Patient.name.family.first().upper() | Patient.name.family.last().lower()",
	"Patient.name.family.upper()",
	"Patient.name.given.tail().select(indexOf('a'))",
	"Patient.address.line.first().substring(4, 6)",
	"Patient.gender in ('male' | 'female')",
	"('male' | 'other') contains Patient.gender",
	"Patient.active.not() xor Patient.deceased.exists()",
	"Patient.active implies Patient.name.exists()",
	"Patient.generalPractitioner.resolve() is Practitioner",
	"Patient.link.other.resolve().id",
	"Patient.name[1].given",
	"Patient.name.given.last().length()",
	"Patient.meta.lastUpdated > @2024-01-01T00:00:00Z",
	"Patient.id.matches('^pat-[0-9]+$')",
	"Patient.name.given.select(trim().toString())",
	"iif(Patient.active, 'active', 'inactive')",
	"Patient.contact.name.family ~ 'DU MARCHÉ'",
	"Patient.contact.name.family = 'DU MARCHÉ'",
	"Patient.children().count()",
	"Patient.address.hasValue() | Patient.birthDate.hasValue()",
	"Observation.value > 5 'mmol/L'",
	"Observation.value.ofType(Quantity).value * 2",
	"Observation.value.ofType(Quantity).value + 1.5",
	"Observation.effective.ofType(dateTime) >= @2024-02-10",
	"Observation.effective.ofType(dateTime) = @2024-02-10",
	"Observation.effective.ofType(dateTime) ~ @2024-02-10",
	"Observation.interpretation.coding.where(code = 'HH' or code = 'LL').exists()",
	"Observation.component.where(code.coding.code = '8480-6').value.ofType(Quantity).value >= 140",
	"Observation.component.value.ofType(Quantity).value.distinct()",
	"Observation.referenceRange.high.value - Observation.referenceRange.low.value",
	"Observation.code.coding.code.toInteger()",
	"Observation.value is Quantity",
	"Observation.value as CodeableConcept",
	"Observation.issued.toString().substring(0, 10)",
	"Observation.status = 'final' and Observation.category.coding.code contains 'laboratory'",
	"Observation.subject.resolve().ofType(Patient).id",
	"Encounter.period.start < @2024-02-11",
	"Encounter.length.value div 60",
	"Encounter.length.value mod 60",
	"Encounter.participant.individual.where(resolve() is RelatedPerson).reference",
	"Condition.onset.ofType(Age).value > 40",
	"Condition.onset is Age",
	"Condition.code.coding.where(system = 'http://snomed.info/sct').code | Condition.code.text",
	"MedicationRequest.medication.resolve().code.coding.display",
	"MedicationRequest.dosageInstruction.doseAndRate.dose.ofType(Quantity) = 81 'mg'",
	"MedicationRequest.dispenseRequest.validityPeriod.end - 1 month",
	"Task.input.value.ofType(string).exists()",
	"Task.output.value.ofType(Reference).reference",
	"QuestionnaireResponse.item.answer.value.ofType(Coding).code",
	"QuestionnaireResponse.descendants().where($this is Coding).code",
	"QuestionnaireResponse.repeat(item).linkId",
	"Questionnaire.item.repeat(item).linkId.count()",
	"Subscription.channel.extension.value",
	"Subscription.criteria.length() > 10",
	"Group.characteristic.where(exclude = false).value.ofType(boolean)",
	"Group.member.where(inactive.exists().not()).entity.reference",
	"Claim.item.detail.subDetail.udi.reference",
	"Claim.total.value >= 1250",
	"Goal.target.due.ofType(Duration)",
	"Goal.target.detail.ofType(Range).high.value",
	"Bundle.entry.resource.ofType(Composition).title",
	"Bundle.entry.resource.where($this is Patient).name.family",
	"Composition.section.section.title | Composition.section.title",
	"Provenance.target.where(resolve() is Observation).reference",
	"Location.position.latitude > 42.2",
	"Medication.ingredient.strength.numerator.value",
	"Immunization.doseQuantity.value = 0.5",
	"Immunization.protocolApplied.doseNumber.ofType(positiveInt) + 1",
	"Account.subject.where(resolve() is Patient).exists() and Account.subject.count() = 2",
	"AllergyIntolerance.onset.ofType(dateTime) < @2005",
	"AllergyIntolerance.lastOccurrence > @2012-06-30",
	"Appointment.start + 30 minutes",
	"Appointment.minutesDuration / 60",
}

// edgeExpressions are operator and function edge cases (empty
// propagation, three-valued logic, equality against equivalence, dates of
// different precision), run on one Patient.
var edgeExpressions = []string{
	"{} = 1", "{} != {}", "{} ~ {}", "{} !~ 1", "{} < 1", "{} + 1", "{} in (1 | 2)",
	"true and {}", "false and {}", "true or {}", "false or {}", "true xor {}", "{} implies true",
	"{} implies false", "false implies {}", "{}.not()", "'x' and true",
	"'abc' = 'ABC'", "'abc' ~ 'ABC'", "'a  b ' ~ 'A B'", "1 = 1.0", "1.0 ~ 1.04", "1.0 ~ 1.06",
	"(1 | 2) = (2 | 1)", "(1 | 2) ~ (2 | 1)", "'1' = 1",
	"@2024-01 = @2024-01-01", "@2024-01 ~ @2024-01-01", "@2024 < @2025-06-01", "@2024 < @2024-06-01",
	"@2024-01-01T10:00:00Z = @2024-01-01T11:00:00+01:00", "@2024-01-01T10:00Z < @2024-01-01T10:00:01Z",
	"@2024-01-01T10:00:00.5Z > @2024-01-01T10:00:00Z", "@T10:00 < @T11:00",
	"5 'mg' < 6 'mg'", "1 week = 1 'wk'", "7 div 2", "7 mod 2", "7 / 2", "5.5 div 0.7", "5.5 mod 0.7",
	"1 / 0", "(-5.5).abs()", "'abcdef'.substring(2, 3)", "'abc'.replace('', '-')", "'a' & {}",
	"'héllo'.length()", "'12'.toInteger() + 1", "(1 | 2 | 3).where($index = 1)",
	"(1 | 2).intersect(2 | 3)", "(1 | 2).exclude(2 | 3)", "iif({}, 'a', 'b')", "(1 | 1 | 2).count()",
}

// triggerCases are topic-trigger style expressions with %current and
// %previous (passed to fhirpath.js as environment variables too).
func triggerCases(corpus []map[string]any) []oracleJob {
	find := func(id string) map[string]any {
		for _, r := range corpus {
			if r["id"] == id {
				return r
			}
		}
		return nil
	}
	lab, vital, task := find("obs-k"), find("obs-hr"), find("task-1")
	prevLab := map[string]any{"resourceType": "Observation", "id": "obs-k", "status": "preliminary",
		"code": lab["code"], "subject": lab["subject"]}
	prevTask := map[string]any{"resourceType": "Task", "id": "task-1", "status": "requested", "for": task["for"]}
	exprs := []string{
		"%current.status = 'final' and %previous.status != 'final'",
		"%previous.empty() or %current.status != %previous.status",
		"%current.interpretation.coding.where(code in ('HH' | 'LL')).exists()",
		"%current.code.coding.where(system = 'http://loinc.org').code = '2823-3'",
		"%current.status = 'final' and (%previous.exists().not() or %previous.status = 'preliminary')",
		"%current.subject.reference = %previous.subject.reference",
		"%current.id = %resource.id",
		"%current.value.ofType(Quantity).value > 6",
		"%current.valueQuantity.value > 6",
		"%previous.status",
		"%current.status in ('completed' | 'in-progress') and %previous.status = 'requested'",
		"%current.for.reference.startsWith('Patient/')",
	}
	var jobs []oracleJob
	pairs := []struct{ cur, prev map[string]any }{{lab, prevLab}, {lab, nil}, {vital, nil}, {task, prevTask}}
	for _, p := range pairs {
		for _, e := range exprs {
			vars := map[string]any{"current": p.cur, "previous": p.prev}
			if p.prev == nil {
				vars["previous"] = []any{}
			}
			jobs = append(jobs, oracleJob{Expression: e, Resource: p.cur, Vars: vars})
		}
	}
	return jobs
}

func TestDifferential(t *testing.T) {
	corpus := loadCorpus(t)
	types := map[string]bool{}
	var jobs []oracleJob
	seen := map[string]bool{}
	for _, res := range corpus {
		rt, _ := res["resourceType"].(string)
		types[rt] = true
		for _, sp := range definitions.AllSearchParams() {
			key := sp.Expression + "\x00" + fmt.Sprint(res["id"])
			if sp.Expression == "" || !appliesTo(sp, rt) || seen[key] {
				continue
			}
			seen[key] = true
			jobs = append(jobs, oracleJob{Expression: sp.Expression, Resource: res})
		}
	}
	searchJobs := len(jobs)
	for _, e := range extraExpressions {
		rt, _, _ := strings.Cut(e, ".")
		rt = strings.TrimPrefix(strings.TrimPrefix(rt, "iif("), "('male' | 'other') contains ")
		for _, res := range corpus {
			if res["resourceType"] == rt || strings.HasPrefix(e, "(") {
				jobs = append(jobs, oracleJob{Expression: e, Resource: res})
			}
		}
	}
	for _, e := range edgeExpressions {
		jobs = append(jobs, oracleJob{Expression: e, Resource: corpus[0]})
	}
	extraJobs := len(jobs) - searchJobs
	jobs = append(jobs, triggerCases(corpus)...)

	server := map[string]map[string]any{}
	for _, res := range corpus {
		server[fmt.Sprintf("%v/%v", res["resourceType"], res["id"])] = res
	}
	resolve := func(ref string) (map[string]any, bool) {
		for _, a := range serverAliases {
			ref = strings.TrimPrefix(ref, a+"/")
		}
		if i := strings.Index(ref, "/_history/"); i > 0 {
			ref = ref[:i]
		}
		r, ok := server[ref]
		return r, ok
	}
	run := runOracle(t, server, jobs)
	want := run.Results
	var (
		agreeValue, agreeEmpty, bothFail, untyped, searchAgree, searchValue int
		resolveJobs, resolveValue                                           int
		failures, accepted                                                  []string
	)
	for i, job := range jobs {
		env := &Env{Resolve: resolve}
		if job.Vars != nil {
			env.Vars = map[string]any{}
			for k, v := range job.Vars {
				env.Vars[k] = v
			}
		}
		e, err := Parse(job.Expression)
		var got []Value
		if err == nil {
			got, err = e.Evaluate(job.Resource, env)
		}
		for _, v := range got {
			if v.Type == "" {
				untyped++
			}
		}
		if err != nil && want[i].Error != "" {
			bothFail++
			t.Logf("both fail: %s on %v: %v / %s", job.Expression, job.Resource["id"], err, want[i].Error)
			continue
		}
		usesResolve := strings.Contains(job.Expression, "resolve()")
		if usesResolve {
			resolveJobs++
		}
		d := diff(got, err, want[i])
		if d == "" {
			if len(got) > 0 {
				agreeValue++
				if usesResolve {
					resolveValue++
				}
			} else {
				agreeEmpty++
			}
			if i < searchJobs {
				searchAgree++
				if len(got) > 0 {
					searchValue++
				}
			}
			continue
		}
		line := fmt.Sprintf("%s on %s/%v: %s", job.Expression, job.Resource["resourceType"], job.Resource["id"], d)
		if reason, ok := acceptedExceptions[job.Expression]; ok {
			accepted = append(accepted, line+" [accepted: "+reason+"]")
			continue
		}
		failures = append(failures, line)
	}
	slices.Sort(failures)
	for _, f := range failures {
		t.Errorf("disagreement: %s", f)
	}
	for _, a := range accepted {
		t.Logf("accepted exception: %s", a)
	}
	n := len(jobs)
	pct := func(k, of int) float64 { return 100 * float64(k) / float64(max(of, 1)) }
	lines := []string{
		fmt.Sprintf("fhirpath differential: %d jobs over %d resources of %d types (%d search-parameter, %d extra, %d trigger)",
			n, len(corpus), len(types), searchJobs, extraJobs, n-searchJobs-extraJobs),
		fmt.Sprintf("fhirpath differential: agree on a non-empty result %d/%d (%.1f%%); agree on an empty result %d (%.1f%%); "+
			"fail in both engines %d (%.1f%%, not agreement); disagree %d (%d accepted exceptions)",
			agreeValue, n, pct(agreeValue, n), agreeEmpty, pct(agreeEmpty, n), bothFail, pct(bothFail, n),
			len(failures)+len(accepted), len(accepted)),
		fmt.Sprintf("fhirpath differential: search parameters alone: %d/%d agree, %d of them on a non-empty result (%.1f%%); %d result items of unknown type",
			searchAgree, searchJobs, searchValue, pct(searchValue, searchJobs), untyped),
		fmt.Sprintf("fhirpath differential: resolve() (each engine its own): %d jobs, %d agree on a non-empty result; "+
			"fhirpath.js fetched %d times from the corpus server, %d found", resolveJobs, resolveValue, run.Served, run.Found),
	}
	for _, l := range lines {
		t.Log(l)
		fmt.Println(l)
	}
	// Decide after printing. Every disagreement not accepted has already
	// failed the test above; an agreement made mostly of empty results or
	// of errors on both sides would prove little, so those shares are
	// bounded too.
	if pct(agreeValue, n) < minNonEmptyAgreement {
		t.Errorf("only %.1f%% of the jobs agree on a non-empty result, want at least %.0f%%", pct(agreeValue, n), minNonEmptyAgreement)
	}
	if run.Found == 0 {
		t.Error("fhirpath.js's resolve() loaded nothing from the corpus server: resolve() was not compared")
	}
	if pct(bothFail, n) > maxBothFail {
		t.Errorf("%.1f%% of the jobs fail in both engines, want at most %.0f%%", pct(bothFail, n), maxBothFail)
	}
	if len(types) < 30 {
		t.Errorf("corpus has %d resource types, want at least 30", len(types))
	}
}
