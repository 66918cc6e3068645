package schema_test

import (
	"encoding/json"
	"testing"
)

// TestNarrative: a narrative is one XHTML <div> of basic formatting with
// some content and nothing active (FHIR R4 narrative rules, txt-1, txt-2).
func TestNarrative(t *testing.T) {
	patient := func(div string) string {
		raw, _ := json.Marshal(div)
		return `{"resourceType":"Patient","text":{"status":"generated","div":` + string(raw) + `}}`
	}
	const ns = ` xmlns="http://www.w3.org/1999/xhtml"`
	for _, c := range []struct{ div, msg string }{
		{`<div` + ns + `><script>alert(1)</script></div>`, "may not contain <script>"},
		{`<div` + ns + `><p onclick="x()">a</p></div>`, "event attribute onclick"},
		{`<div` + ns + `><p ONMOUSEOVER="x()">a</p></div>`, "event attribute ONMOUSEOVER"},
		{`<div` + ns + `><a href="javascript:alert(1)">a</a></div>`, "<a href> may not run a script"},
		{`<div` + ns + `><a href=" JaVa&#x09;Script:alert(1)">a</a></div>`, "<a href> may not run a script"},
		{`<div` + ns + `><img src="data:text/html,x" alt="x"/></div>`, "<img src> may not run a script"},
		{`<div` + ns + `><span style="background:url(http://evil/x)">a</span></div>`, "loads or runs something"},
		{`<div` + ns + `><iframe src="http://x"></iframe></div>`, "may not contain <iframe>"},
		{`<div` + ns + `><form><input/></form></div>`, "may not contain <form>"},
		{`<div` + ns + `><object data="x"></object>a</div>`, "may not contain <object>"},
		{`<div` + ns + `><style>p{}</style>a</div>`, "may not contain <style>"},
		{`<div` + ns + `><ins>a</ins></div>`, "may not contain <ins>"},
		{`<div` + ns + `><p data-x="1">a</p></div>`, "may not carry the attribute data-x"},
		{`<div` + ns + `><svg xmlns="http://www.w3.org/2000/svg"/>a</div>`, "<svg> is not in the XHTML namespace"},
		{`<div` + ns + `><p xmlns:x="urn:x" x:y="1">a</p></div>`, "may not declare the namespace"},
		{`<div>Peter</div>`, `must be one <div xmlns="http://www.w3.org/1999/xhtml"> element`},
		{`<p` + ns + `>Peter</p>`, `must be one <div`},
		{`Peter`, "has text outside its <div>"},
		{`<div` + ns + `>Peter</div><div` + ns + `>Paul</div>`, "with nothing after it"},
		{`<div` + ns + `>a &nbsp; b</div>`, "not well-formed"},
		{`<div` + ns + `><p>unclosed</div>`, "not well-formed"},
		{`<?xml version="1.0"?><div` + ns + `>a</div>`, "processing instruction"},
		{`<!DOCTYPE div><div` + ns + `>a</div>`, "<!DOCTYPE>"},
		{`<div` + ns + `>  <p> </p> </div>`, "has no content (txt-2"},
	} {
		wantIssue(t, patient(c.div), "Patient.text.div", c.msg)
	}
	for _, ok := range []string{
		`<div` + ns + `>Peter</div>`,
		`<div` + ns + ` xml:lang="en" lang="en"><h1 class="t">Peter &amp; Paul &#160;</h1><p style="color: red">Male, <b>42</b></p>` +
			`<table border="1"><tbody><tr><td colspan="2">x</td></tr></tbody></table><ul><li>a</li></ul>` +
			`<a href="http://example.org/x">link</a><!-- a comment --></div>`,
		`<div` + ns + `><img src="#photo" alt="photo"/></div>`,
		`<div` + ns + `><img src="data:image/png;base64,iVBORw0KGgo=" alt="x"/></div>`,
		"\n<div" + ns + "><p>a</p></div>\n",
	} {
		wantIssue(t, patient(ok), "", "")
	}
	// a contained resource's narrative and a Bundle entry's are checked too
	wantIssue(t, `{"resourceType":"Observation","status":"final","code":{"text":"x"},"contained":[{"resourceType":"Patient","id":"p",`+
		`"text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\"><script/>a</div>"}}],"subject":{"reference":"#p"}}`,
		"Observation.contained[0].text.div", "may not contain <script>")
}
