// Critical results and their acknowledgement, kept on the server.
//
// An acknowledgement is a FHIR Task, so every open dashboard sees it on the
// live feed and finds it again when it opens:
//
//   Task.status      completed
//   Task.intent      order
//   Task.code        https://fhirsub.org/CodeSystem/dashboard-task#acknowledge-critical-result
//   Task.focus       the critical Observation (reference + display)
//   Task.for         its patient
//   Task.owner       who acknowledged (the token's fhirUser or sub)
//   Task.executionPeriod.end / lastModified   when
import { api, codeText, valueText, interpretation, isCritical, patientRef } from './fhir.js';

export const ACK_SYSTEM = 'https://fhirsub.org/CodeSystem/dashboard-task';
export const ACK_CODE = 'acknowledge-critical-result';
/** WINDOW is how far back the dashboard looks for critical results. */
export const WINDOW_MS = 24 * 3600 * 1000;
const SCAN = 1000; // Observations read at most (the newest first)

/** isAck tells whether a resource is an acknowledgement Task. */
export function isAck(r) {
  return r?.resourceType === 'Task' && r.status !== 'entered-in-error' && (r.code?.coding ?? []).some((c) => c.system === ACK_SYSTEM && c.code === ACK_CODE);
}

/** ackFocus returns "Observation/id" acknowledged by a Task, or null. */
export function ackFocus(r) {
  const m = (r?.focus?.reference ?? '').match(/(?:^|\/)(Observation\/[^/]+)$/);
  return m ? m[1] : null;
}

/** ackTask builds the acknowledgement Task of a critical Observation. */
export function ackTask(obs, who) {
  const now = new Date().toISOString();
  const what = [codeText(obs.code), valueText(obs), interpretation(obs) ? `(${interpretation(obs)})` : ''].filter(Boolean).join(' ');
  const t = {
    resourceType: 'Task',
    status: 'completed',
    intent: 'order',
    code: { coding: [{ system: ACK_SYSTEM, code: ACK_CODE, display: 'Acknowledge critical result' }], text: 'Critical result acknowledged' },
    description: `Critical result acknowledged: ${what}`,
    focus: { reference: `Observation/${obs.id}`, display: what },
    authoredOn: now,
    lastModified: now,
    executionPeriod: { end: now },
  };
  const p = patientRef(obs);
  if (p) t.for = { reference: `Patient/${p}` };
  if (who) t.owner = who.startsWith?.('Practitioner/') ? { reference: who } : { display: who };
  return t;
}

/**
 * loadCritical reads, from the server, the critical Observations of the
 * last WINDOW_MS that no Task acknowledges yet. It returns {results,
 * scanned, truncated, error}: results newest first; truncated when more
 * than SCAN Observations changed in the window (older ones were not read).
 */
export async function loadCritical() {
  const since = encodeURIComponent(new Date(Date.now() - WINDOW_MS).toISOString());
  const [obs, acks] = await Promise.all([
    api('GET', `/Observation?_lastUpdated=ge${since}&_sort=-_lastUpdated&_count=${SCAN}`),
    api('GET', `/Task?code=${encodeURIComponent(`${ACK_SYSTEM}|${ACK_CODE}`)}&_lastUpdated=ge${since}&_count=1000`),
  ]);
  if (!obs.ok) return { results: [], scanned: 0, truncated: false, error: obs.message };
  if (!acks.ok) return { results: [], scanned: 0, truncated: false, error: acks.message };
  const acked = new Set((acks.body?.entry ?? []).map((e) => e.resource).filter(isAck).map(ackFocus).filter(Boolean));
  const all = (obs.body?.entry ?? []).map((e) => e.resource).filter(Boolean);
  const results = all.filter((o) => isCritical(o) && !acked.has(`Observation/${o.id}`));
  const truncated = all.length >= SCAN && (obs.body?.link ?? []).some((l) => l.relation === 'next');
  return { results, scanned: all.length, truncated, error: null };
}
