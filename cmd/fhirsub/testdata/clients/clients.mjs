// Drives a running fhirsub (base URL in FHIRSUB_BASE) with two widely used
// FHIR client libraries, fhir-kit-client and fhirclient, the way apps use
// them. Prints one JSON line per check ({client, check, ok, detail}) and
// exits 1 when any check failed. Run by ../../thirdparty_test.go.
import { Client } from 'fhir-kit-client';
import fhirclient from 'fhirclient';

const base = process.env.FHIRSUB_BASE;
if (!base) {
  console.error('FHIRSUB_BASE is not set');
  process.exit(2);
}
const run = Date.now().toString(36) + Math.random().toString(36).slice(2, 8);
let failed = 0;

async function check(client, name, fn) {
  try {
    const detail = await fn();
    console.log(JSON.stringify({ client, check: name, ok: true, detail: detail ?? '' }));
  } catch (err) {
    failed++;
    const body = err && err.response && err.response.data ? JSON.stringify(err.response.data).slice(0, 400) : '';
    console.log(JSON.stringify({ client, check: name, ok: false, detail: `${err && err.message ? err.message : err} ${body}` }));
  }
}

function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

const patient = (family, ident) => ({
  resourceType: 'Patient',
  name: [{ family, given: ['Ann'] }],
  gender: 'female',
  identifier: [{ system: 'urn:fhirsub-test', value: ident }],
});
const observation = (subject, code) => ({
  resourceType: 'Observation',
  status: 'final',
  code: { coding: [{ system: 'http://loinc.org', code }] },
  subject: { reference: subject },
  valueQuantity: { value: 72, unit: '/min', system: 'http://unitsofmeasure.org', code: '/min' },
});

async function fhirKit() {
  const c = new Client({ baseUrl: base });
  const C = 'fhir-kit-client';
  let id;
  await check(C, 'capabilityStatement', async () => {
    const cs = await c.capabilityStatement();
    assert(cs.resourceType === 'CapabilityStatement' && cs.fhirVersion === '4.0.1', 'not an R4 CapabilityStatement');
  });
  await check(C, 'create', async () => {
    const p = await c.create({ resourceType: 'Patient', body: patient('Kit', `kit-${run}`) });
    id = p.id;
    assert(id && p.meta.versionId === '1', `created ${JSON.stringify(p)}`);
    return id;
  });
  await check(C, 'read', async () => {
    const p = await c.read({ resourceType: 'Patient', id });
    assert(p.name[0].family === 'Kit', 'wrong name');
  });
  await check(C, 'update', async () => {
    const p = await c.read({ resourceType: 'Patient', id });
    p.gender = 'other';
    const u = await c.update({ resourceType: 'Patient', id, body: p });
    assert(u.meta.versionId === '2' && u.gender === 'other', `updated ${JSON.stringify(u.meta)}`);
  });
  await check(C, 'vread', async () => {
    const v = await c.vread({ resourceType: 'Patient', id, version: '1' });
    assert(v.gender === 'female', 'version 1 changed');
  });
  await check(C, 'patch', async () => {
    const p = await c.patch({ resourceType: 'Patient', id, jsonPatch: [{ op: 'replace', path: '/gender', value: 'male' }] });
    assert(p.gender === 'male' && p.meta.versionId === '3', `patched ${JSON.stringify(p)}`);
  });
  await check(C, 'search with paging', async () => {
    for (let i = 0; i < 5; i++) await c.create({ resourceType: 'Observation', body: observation(`Patient/${id}`, '8867-4') });
    let bundle = await c.search({ resourceType: 'Observation', searchParams: { subject: `Patient/${id}`, _count: 2 } });
    const seen = new Set();
    let pages = 0;
    while (bundle) {
      pages++;
      for (const e of bundle.entry || []) seen.add(e.resource.id);
      bundle = await c.nextPage({ bundle });
    }
    assert(seen.size === 5 && pages === 3, `${seen.size} observations over ${pages} pages`);
    return `${seen.size} over ${pages} pages`;
  });
  await check(C, '_include', async () => {
    const b = await c.search({ resourceType: 'Observation', searchParams: { subject: `Patient/${id}`, _include: 'Observation:subject' } });
    const inc = (b.entry || []).filter((e) => e.search && e.search.mode === 'include');
    assert(inc.length === 1 && inc[0].resource.id === id, `includes ${JSON.stringify(inc.map((e) => e.fullUrl))}`);
  });
  await check(C, 'chained search', async () => {
    const b = await c.search({ resourceType: 'Observation', searchParams: { 'subject:Patient.identifier': `urn:fhirsub-test|kit-${run}` } });
    assert(b.total === 5, `total ${b.total}`);
  });
  await check(C, 'compartment search', async () => {
    const compartment = { resourceType: 'Patient', id };
    const b = await c.search({ resourceType: 'Observation', compartment, searchParams: { code: '8867-4', _count: 2 } });
    const p = await c.compartmentSearch({ resourceType: 'Observation', compartment, searchParams: { code: '8867-4' }, options: { postSearch: true } });
    const n = await c.search({ resourceType: 'Condition', compartment });
    assert(b.total === 5 && (b.entry || []).length === 2 && p.total === 5 && n.total === 0,
      `totals ${b.total} (${(b.entry || []).length} on the page), by POST ${p.total}, Conditions ${n.total}`);
  });
  await check(C, 'conditional create', async () => {
    const headers = { 'If-None-Exist': `identifier=urn:fhirsub-test|kitc-${run}` };
    const a = await c.create({ resourceType: 'Patient', body: patient('KitC', `kitc-${run}`), options: { headers } });
    const b = await c.create({ resourceType: 'Patient', body: patient('KitC2', `kitc-${run}`), options: { headers } });
    assert(a.id === b.id && b.name[0].family === 'KitC', `ids ${a.id} ${b.id}`);
  });
  await check(C, 'conditional update', async () => {
    const searchParams = { identifier: `urn:fhirsub-test|kitu-${run}` };
    const a = await c.update({ resourceType: 'Patient', searchParams, body: patient('KitU', `kitu-${run}`) });
    const b = await c.update({ resourceType: 'Patient', searchParams, body: patient('KitU2', `kitu-${run}`) });
    assert(a.id === b.id && b.meta.versionId === '2' && b.name[0].family === 'KitU2', `ids ${a.id} ${b.id} v${b.meta.versionId}`);
  });
  await check(C, 'batch', async () => {
    const r = await c.batch({ body: { resourceType: 'Bundle', type: 'batch', entry: [
      { resource: patient('KitB', `kitb-${run}`), request: { method: 'POST', url: 'Patient' } },
      { request: { method: 'GET', url: `Patient/${id}` } },
      { request: { method: 'GET', url: 'Patient/does-not-exist' } },
    ] } });
    const st = r.entry.map((e) => e.response.status);
    assert(r.type === 'batch-response' && st[0].startsWith('201') && st[1].startsWith('200') && st[2].startsWith('404'), `statuses ${st}`);
  });
  await check(C, 'transaction with urn:uuid', async () => {
    const pu = 'urn:uuid:6a1f1b1e-0000-4000-8000-000000000001';
    const r = await c.transaction({ body: { resourceType: 'Bundle', type: 'transaction', entry: [
      { fullUrl: pu, resource: patient('KitT', `kitt-${run}`), request: { method: 'POST', url: 'Patient' } },
      { resource: observation(pu, '1234-5'), request: { method: 'POST', url: 'Observation' } },
    ] } });
    const pid = r.entry[0].resource.id;
    const o = await c.read({ resourceType: 'Observation', id: r.entry[1].resource.id });
    assert(o.subject.reference === `Patient/${pid}`, `subject ${o.subject.reference}, patient ${pid}`);
  });
  await check(C, 'history', async () => {
    const h = await c.history({ resourceType: 'Patient', id });
    assert(h.type === 'history' && h.total === 3, `history total ${h.total}`);
  });
  await check(C, 'delete', async () => {
    await c.delete({ resourceType: 'Patient', id });
    let status = 0;
    try {
      await c.read({ resourceType: 'Patient', id });
    } catch (err) {
      status = err.response && err.response.status;
    }
    assert(status === 410, `read after delete: ${status}`);
  });
}

async function smartClient() {
  const c = new fhirclient.FhirClient(base);
  const C = 'fhirclient';
  let id;
  await check(C, 'create', async () => {
    const p = await c.create(patient('Smart', `smart-${run}`));
    id = p.id;
    assert(id, 'no id');
  });
  await check(C, 'read', async () => {
    const p = await c.fhirRequest(`Patient/${id}`);
    assert(p.name[0].family === 'Smart', 'wrong name');
  });
  await check(C, 'update', async () => {
    const p = await c.fhirRequest(`Patient/${id}`);
    p.active = true;
    const u = await c.update(p);
    assert(u.meta.versionId === '2' && u.active === true, `updated ${JSON.stringify(u.meta)}`);
  });
  await check(C, 'patch', async () => {
    const p = await c.patch(`Patient/${id}`, [{ op: 'add', path: '/birthDate', value: '1970-01-01' }]);
    assert(p.birthDate === '1970-01-01', `patched ${JSON.stringify(p)}`);
  });
  await check(C, 'search with paging', async () => {
    for (let i = 0; i < 3; i++) await c.create(observation(`Patient/${id}`, '8867-4'));
    let n = 0;
    let pages = 0;
    for await (const page of c.pages(`Observation?subject=Patient/${id}&_count=2`)) {
      pages++;
      n += (page.entry || []).length;
    }
    assert(n === 3 && pages === 2, `${n} over ${pages} pages`);
    return `${n} over ${pages} pages`;
  });
  await check(C, '_include', async () => {
    const b = await c.fhirRequest(`Observation?subject=Patient/${id}&_include=Observation:subject`);
    assert((b.entry || []).some((e) => e.search.mode === 'include' && e.resource.id === id), 'patient not included');
  });
  await check(C, 'conditional create', async () => {
    const headers = { 'If-None-Exist': `identifier=urn:fhirsub-test|smartc-${run}` };
    const a = await c.create(patient('SmartC', `smartc-${run}`), { headers });
    const b = await c.create(patient('SmartC2', `smartc-${run}`), { headers });
    assert(a.id === b.id, `ids ${a.id} ${b.id}`);
  });
  await check(C, 'conditional update', async () => {
    const url = `Patient?identifier=urn:fhirsub-test|smartu-${run}`;
    const opts = (body) => ({ method: 'PUT', body: JSON.stringify(body), headers: { 'Content-Type': 'application/fhir+json' } });
    const a = await c.fhirRequest(url, opts(patient('SmartU', `smartu-${run}`)));
    const b = await c.fhirRequest(url, opts(patient('SmartU2', `smartu-${run}`)));
    assert(a.id === b.id && b.meta.versionId === '2', `ids ${a.id} ${b.id}`);
  });
  await check(C, 'transaction with urn:uuid', async () => {
    const pu = 'urn:uuid:6a1f1b1e-0000-4000-8000-000000000002';
    const body = { resourceType: 'Bundle', type: 'transaction', entry: [
      { fullUrl: pu, resource: patient('SmartT', `smartt-${run}`), request: { method: 'POST', url: 'Patient' } },
      { resource: observation(pu, '1234-5'), request: { method: 'POST', url: 'Observation' } },
    ] };
    const r = await c.fhirRequest(base + '/', { method: 'POST', body: JSON.stringify(body), headers: { 'Content-Type': 'application/fhir+json' } });
    const pid = r.entry[0].resource.id;
    assert(r.entry[1].resource.subject.reference === `Patient/${pid}`, `subject ${r.entry[1].resource.subject.reference}`);
  });
  await check(C, 'delete', async () => {
    await c.delete(`Patient/${id}`);
  });
}

await fhirKit();
await smartClient();
process.exit(failed ? 1 : 0);
