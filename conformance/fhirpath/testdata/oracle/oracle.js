// oracle.js evaluates FHIRPath jobs with fhirpath.js (the reference engine
// for the Go differential test). Input on stdin: a JSON object
// {"server": {"Type/id": resource, ...}, "aliases": [base URL, ...],
// "jobs": [{"expression": string,
// "resource": object, "vars": object?}, ...]}. Output on stdout: a JSON
// object {"results": [...], "served": n, "found": m}: one result per job,
// {"result": [...], "types": [...]} or {"error": string}, and how many
// requests the local server answered, and with a resource.
//
// resolve() is fhirpath.js's own: the script serves the "server" resources
// over HTTP on 127.0.0.1 and passes that base as fhirServerUrl, so a
// relative "Type/id" reference is fetched from it, "#id" is found among the
// contained resources by fhirpath.js itself, and anything else follows
// fhirpath.js's rules. The "aliases" are the absolute bases the corpus's
// references name: their requests go to the same local server. No request
// leaves this machine: fetches of any other origin are refused (the
// reference then resolves to nothing, as it would offline).
'use strict';
const http = require('http');
const fhirpath = require('fhirpath');
const r4 = require('fhirpath/fhir-context/r4');

const counts = { served: 0, found: 0 };

function serve(resources) {
  const server = http.createServer((req, res) => {
    counts.served++;
    const key = decodeURIComponent(req.url.replace(/^\/+/, '').split('?')[0]).replace(/\/_history\/[^/]+$/, '');
    const body = resources[key];
    if (!body) {
      res.writeHead(404, { 'Content-Type': 'application/fhir+json' });
      res.end(JSON.stringify({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'not-found' }] }));
      return;
    }
    counts.found++;
    res.writeHead(200, { 'Content-Type': 'application/fhir+json' });
    res.end(JSON.stringify(body));
  });
  return new Promise((ok) => server.listen(0, '127.0.0.1', () => ok(server)));
}

async function main(input) {
  const { server: resources, aliases, jobs } = JSON.parse(input);
  const server = await serve(resources || {});
  const base = `http://127.0.0.1:${server.address().port}`;
  const realFetch = globalThis.fetch;
  globalThis.fetch = (url, opts) => {
    let u = String(url);
    for (const a of aliases || []) {
      if (u.startsWith(a + '/')) u = base + u.slice(a.length);
    }
    return u.startsWith(base + '/') ? realFetch(u, opts) : Promise.reject(new Error(`offline: ${url}`));
  };
  const out = [];
  for (const job of jobs) {
    try {
      const raw = await fhirpath.evaluate(job.resource, job.expression, job.vars || {}, r4, {
        resolveInternalTypes: false,
        preciseMath: true,
        async: 'always',
        fhirServerUrl: base,
      });
      out.push({ result: fhirpath.resolveInternalTypes(raw), types: fhirpath.types(raw) });
    } catch (e) {
      out.push({ error: String(e && e.message ? e.message : e) });
    }
  }
  server.close();
  process.stdout.write(JSON.stringify({ results: out, served: counts.served, found: counts.found }));
}

let buf = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d) => { buf += d; });
process.stdin.on('end', () => main(buf).catch((e) => { process.stderr.write(String(e && e.stack || e)); process.exit(1); }));
