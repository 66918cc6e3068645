// oracle.js evaluates FHIRPath jobs with fhirpath.js (the reference engine
// for the Go differential test). Input on stdin: a JSON array of
// {"expression": string, "resource": object, "vars": object?}. Output on
// stdout: a JSON array, one entry per job, {"result": [...], "types": [...]}
// or {"error": string}.
//
// resolve() is replaced by the stub semantics of the Go engine (no server is
// reachable in tests): a Reference whose reference is "Type/id" or an
// absolute URL ending in ".../Type/id[/_history/v]" resolves to
// {"resourceType": Type, "id": id}; "#id" resolves to the contained
// resource of the root resource.
'use strict';
const fhirpath = require('fhirpath');
const r4 = require('fhirpath/fhir-context/r4');
const { ResourceNode } = require(require('path').join(__dirname, 'node_modules/fhirpath/src/types.js'));

const refPattern = /(?:^|\/)([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[A-Za-z0-9\-.]{1,64})?$/;

function stubFor(ctx, item, root) {
  const data = item && item.data !== undefined ? item.data : item;
  if (!data || typeof data !== 'object' || typeof data.reference !== 'string') {
    return null;
  }
  const ref = data.reference;
  if (ref.startsWith('#')) {
    const found = (root.contained || []).find((c) => c && c.id === ref.slice(1));
    return found ? ResourceNode.makeResNode(ctx, found, null, null, null, null) : null;
  }
  const m = refPattern.exec(ref);
  if (!m || !(m[1] in r4.type2Parent)) {
    return null;
  }
  return ResourceNode.makeResNode(ctx, { resourceType: m[1], id: m[2] }, null, null, null, null);
}

function main(input) {
  const jobs = JSON.parse(input);
  const out = jobs.map((job) => {
    try {
      const table = {
        resolve: {
          fn: function (coll) {
            const res = [];
            for (const item of coll || []) {
              const n = stubFor(this, item, job.resource);
              if (n) res.push(n);
            }
            return res;
          },
          arity: { 0: [] },
        },
      };
      const raw = fhirpath.evaluate(job.resource, job.expression, job.vars || {}, r4, {
        resolveInternalTypes: false,
        preciseMath: true,
        userInvocationTable: table,
      });
      return { result: fhirpath.resolveInternalTypes(raw), types: fhirpath.types(raw) };
    } catch (e) {
      return { error: String(e && e.message ? e.message : e) };
    }
  });
  process.stdout.write(JSON.stringify(out));
}

let buf = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d) => { buf += d; });
process.stdin.on('end', () => main(buf));
