// FHIR helpers for the dashboard: REST calls and human-readable summaries.
import { outcomeMessage } from '/client/index.js';
import { token } from './auth.js';

// onUnauthorized is called when the server answers 401 (no token, an
// expired or a rejected one).
let onUnauthorized = () => {};
export function setUnauthorizedHandler(f) {
  onUnauthorized = f;
}

/**
 * api performs a FHIR REST call relative to the server root and never
 * throws: it returns {ok, status, body, message}; message is the
 * OperationOutcome text (or the HTTP status) when ok is false.
 */
export async function api(method, path, body) {
  const init = { method, headers: { Accept: 'application/fhir+json' } };
  const t = token();
  if (t) init.headers.Authorization = `Bearer ${t}`;
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/fhir+json';
    init.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(path, init);
  } catch (err) {
    return { ok: false, status: 0, body: null, message: `network error: ${err.message}` };
  }
  const text = await resp.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    // not JSON (e.g. a proxy error page)
  }
  if (resp.status === 401) onUnauthorized(outcomeMessage(json) ?? 'authentication required');
  const message = resp.ok ? null : outcomeMessage(json) ?? `HTTP ${resp.status} ${resp.statusText}`.trim();
  return { ok: resp.ok, status: resp.status, body: json, message };
}

/** params flattens Parameters into {name: value} (repeated names: last wins). */
export function params(p) {
  const out = {};
  for (const x of p?.parameter ?? []) {
    const k = Object.keys(x).find((key) => key.startsWith('value'));
    out[x.name] = k ? x[k] : x.part ?? null;
  }
  return out;
}

/** codeText returns the display text of a CodeableConcept. */
export function codeText(cc) {
  if (!cc) return '';
  if (cc.text) return cc.text;
  const c = (cc.coding ?? []).find((x) => x.display) ?? cc.coding?.[0];
  return c ? c.display ?? c.code ?? '' : '';
}

/** valueText formats Observation.value[x]. */
export function valueText(r) {
  if (!r) return '';
  if (r.valueQuantity) {
    const q = r.valueQuantity;
    return `${q.comparator ?? ''}${q.value ?? ''}${q.unit ?? q.code ? ' ' + (q.unit ?? q.code) : ''}`;
  }
  if (r.valueCodeableConcept) return codeText(r.valueCodeableConcept);
  if (r.valueString !== undefined) return String(r.valueString);
  if (r.valueBoolean !== undefined) return r.valueBoolean ? 'yes' : 'no';
  if (r.valueInteger !== undefined) return String(r.valueInteger);
  if (r.component?.length) {
    return r.component.map((c) => `${codeText(c.code)} ${valueText(c)}`).join(' / ');
  }
  return '';
}

const CRITICAL = new Set(['HH', 'LL', 'AA', 'HU', 'LU']);
const INTERP = { HH: 'Critical high', LL: 'Critical low', AA: 'Critical abnormal', H: 'High', L: 'Low', A: 'Abnormal', N: 'Normal', HU: 'Significantly high', LU: 'Significantly low' };

/** interpretation returns the first interpretation code of an Observation. */
export function interpretation(r) {
  for (const cc of r?.interpretation ?? []) for (const c of cc.coding ?? []) if (c.code) return c.code;
  return null;
}

/** interpretationText spells an interpretation code out. */
export function interpretationText(code) {
  return INTERP[code] ?? code ?? '';
}

/** isCritical tells whether an Observation is flagged critical. */
export function isCritical(r) {
  return r?.resourceType === 'Observation' && CRITICAL.has(interpretation(r));
}

/** refRange formats the first referenceRange. */
export function refRange(r) {
  const rr = r?.referenceRange?.[0];
  if (!rr) return '';
  if (rr.text) return rr.text;
  const lo = rr.low?.value;
  const hi = rr.high?.value;
  const unit = rr.low?.unit ?? rr.high?.unit ?? '';
  if (lo !== undefined && hi !== undefined) return `${lo}–${hi} ${unit}`.trim();
  if (lo !== undefined) return `≥ ${lo} ${unit}`.trim();
  if (hi !== undefined) return `≤ ${hi} ${unit}`.trim();
  return '';
}

/** patientRef extracts a patient id from a resource (best effort). */
export function patientRef(r) {
  if (!r) return null;
  if (r.resourceType === 'Patient') return r.id ?? null;
  for (const k of ['subject', 'patient', 'for', 'beneficiary']) {
    const ref = r[k]?.reference;
    if (typeof ref === 'string') {
      const m = ref.match(/(?:^|\/)Patient\/([^/]+)$/);
      if (m) return m[1];
    }
  }
  return null;
}

/** patientName formats Patient.name[0]. */
export function patientName(p) {
  const n = p?.name?.[0];
  if (!n) return null;
  if (n.text) return n.text;
  return [...(n.given ?? []), n.family].filter(Boolean).join(' ') || null;
}

/** summary is a one-line description of a resource for the feed. */
export function summary(type, r) {
  if (!r) return 'deleted';
  switch (type) {
    case 'Observation': {
      const i = interpretation(r);
      return [codeText(r.code), valueText(r), i ? `(${i})` : ''].filter(Boolean).join(' ');
    }
    case 'ServiceRequest':
      return [codeText(r.code), r.priority && r.priority !== 'routine' ? r.priority.toUpperCase() : '', `· ${r.status}`].filter(Boolean).join(' ');
    case 'MedicationRequest':
      return `${codeText(r.medicationCodeableConcept) || 'medication'} · ${r.status}`;
    case 'DiagnosticReport':
      return [codeText(r.code), `· ${r.status}`, r.conclusion ? `— ${r.conclusion}` : ''].filter(Boolean).join(' ');
    case 'Task':
      return [r.description || codeText(r.code) || 'task', `· ${r.status}`, r.businessStatus ? `(${codeText(r.businessStatus)})` : ''].filter(Boolean).join(' ');
    case 'Communication':
      return r.payload?.[0]?.contentString ?? codeText(r.category?.[0]) ?? 'message';
    case 'Patient':
      return patientName(r) ?? r.id;
    case 'Subscription':
      return `${r.status} · ${r.criteria ?? ''}`;
    default:
      return [r.status, codeText(r.code)].filter(Boolean).join(' · ') || r.id || '';
  }
}

/** time formats an instant as a local clock time (HH:MM:SS). */
export function time(ts) {
  const d = ts ? new Date(ts) : new Date();
  if (Number.isNaN(d.getTime())) return '';
  return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
}

/** when formats an instant: the clock time today, else the date and time. */
export function when(ts) {
  const d = ts ? new Date(ts) : new Date();
  if (Number.isNaN(d.getTime())) return '';
  if (d.toDateString() === new Date().toDateString()) return time(ts);
  return d.toLocaleString([], { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', hour12: false });
}

/** el creates an element with attributes and children. */
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) e.append(c);
  return e;
}
