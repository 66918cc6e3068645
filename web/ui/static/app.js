// The fhirsub dashboard: wires the shared live-channel client to the feed,
// the critical results panel, the order board, the notification center and
// the subscription manager. Plain ES modules, no build step.
import { getClient } from '/client/index.js';
import { api, isCritical, patientName, patientRef, codeText, valueText, interpretation } from './fhir.js';
import { Feed } from './feed.js';
import { CriticalPanel, OrderBoard, Notifications, eventTitle } from './panels.js';
import { SubscriptionManager } from './subs.js';

const $ = (id) => document.getElementById(id);

// Patient names, fetched once per patient and cached.
const names = new Map();
const asked = new Set();
let relabel = () => {};
function patientLabel(id) {
  if (!id) return null;
  if (names.has(id)) return names.get(id);
  if (!asked.has(id) && asked.size < 5000) {
    asked.add(id);
    api('GET', `/Patient/${encodeURIComponent(id)}`).then((r) => {
      const n = r.ok ? patientName(r.body) : null;
      if (n) {
        names.set(id, n);
        relabel();
      }
    });
  }
  return id;
}

const client = getClient();
const feed = new Feed({ viewport: $('feed-viewport'), spacer: $('feed-spacer'), rows: $('feed-rows'), count: $('feed-count'), patientLabel });
const notifications = new Notifications({ button: $('bell'), badge: $('badge'), drawer: $('notifications'), list: $('notif-list'), markRead: $('mark-read'), patientLabel });
const critical = new CriticalPanel({
  list: $('crit-list'),
  count: $('crit-count'),
  empty: $('crit-empty'),
  patientLabel,
  onAcknowledge: (key) => notifications.read(`critical_result:${key}`),
});
const orders = new OrderBoard({ board: $('order-board'), patientLabel });
const subs = new SubscriptionManager($('view-subscriptions'), { client });
let relabelPending = false;
relabel = () => {
  if (relabelPending) return;
  relabelPending = true;
  setTimeout(() => {
    relabelPending = false;
    feed.schedule();
    critical.render();
    orders.render();
  }, 200);
};

// Connection indicator.
const conn = $('conn');
function setConn(state, text) {
  conn.dataset.state = state;
  conn.querySelector('.label').textContent = text;
}
client.on('connected', () => setConn('live', 'Live'));
client.on('disconnected', () => setConn('reconnecting', navigator.onLine === false ? 'Offline' : 'Reconnecting…'));
client.on('error', (e) => {
  if (e.code !== 'heartbeat') console.warn('fhirsub:', e.code, e.message);
});

// Resource types seen, for the type filter.
const types = new Set();
const typeSel = $('f-type');
function noteType(t) {
  if (!t || types.has(t)) return;
  types.add(t);
  const opts = [...types].sort();
  const cur = typeSel.value;
  typeSel.replaceChildren(new Option('All types', ''), ...opts.map((x) => new Option(x, x)));
  typeSel.value = cur;
}
['Observation', 'ServiceRequest', 'MedicationRequest', 'DiagnosticReport', 'Task', 'Communication', 'Patient'].forEach(noteType);

client.on('update', (update) => {
  // Resources outside the R4 Patient compartment (Task) name their patient
  // in the resource only.
  const u = update.patientId || !update.resource ? update : { ...update, patientId: patientRef(update.resource) };
  if (u.resourceType === 'Patient' && u.resource) {
    const n = patientName(u.resource);
    if (n) names.set(u.resourceId, n);
  }
  noteType(u.resourceType);
  feed.add(u);
  if (u.resourceType === 'Observation') {
    if (u.resource && isCritical(u.resource)) {
      critical.add(u.resource, u.patientId, u.timestamp);
      notifications.add({
        key: `critical_result:Observation/${u.resourceId}`,
        kind: 'critical_result',
        detail: `${codeText(u.resource.code)} ${valueText(u.resource)} (${interpretation(u.resource)})`,
        patientId: u.patientId,
        time: u.timestamp,
      });
    } else critical.remove(`Observation/${u.resourceId}`);
  }
  if (u.resourceType === 'ServiceRequest' || u.resourceType === 'MedicationRequest') orders.update(u);
});

client.on('clinical_event', (ev) => {
  const d = ev.details ?? {};
  const ref = d.resource_type && d.resource_id ? `${d.resource_type}/${d.resource_id}` : '';
  const key = ev.eventType === 'critical_result' ? `critical_result:${ref}` : `${ev.eventType}:${ref}:${ev.seq ?? Math.random()}`;
  const detail = [d.summary ?? d.description ?? d.code_display ?? d.code, d.status ? `status ${d.status}` : '', ref].filter(Boolean).join(' · ');
  notifications.add({ key, kind: ev.eventType, detail: detail || eventTitle(ev.eventType), patientId: d.patient_id, time: ev.timestamp });
});

client.subscribe({ resourceTypes: ['*'], patientIds: [] });
setConn('connecting', 'Connecting…');

// Feed filters.
let debounce = null;
const applyFilter = () => feed.setFilter({ patient: $('f-patient').value, type: typeSel.value });
$('f-patient').addEventListener('input', () => {
  clearTimeout(debounce);
  debounce = setTimeout(applyFilter, 150);
});
typeSel.addEventListener('change', applyFilter);
$('f-pause').addEventListener('click', (ev) => {
  const paused = ev.currentTarget.getAttribute('aria-pressed') !== 'true';
  ev.currentTarget.setAttribute('aria-pressed', String(paused));
  ev.currentTarget.textContent = paused ? 'Resume' : 'Pause';
  feed.setPaused(paused);
});
$('f-clear').addEventListener('click', () => feed.clear());

// Views.
function route() {
  const view = location.hash === '#subscriptions' ? 'subscriptions' : 'live';
  for (const tab of document.querySelectorAll('[role=tab]')) tab.setAttribute('aria-selected', String(tab.dataset.view === view));
  $('view-live').hidden = view !== 'live';
  $('view-subscriptions').hidden = view !== 'subscriptions';
  if (view === 'subscriptions') subs.show();
  else {
    subs.hide();
    feed.schedule();
  }
}
for (const tab of document.querySelectorAll('[role=tab]')) {
  tab.addEventListener('click', () => {
    location.hash = tab.dataset.view === 'live' ? '' : tab.dataset.view;
  });
}
window.addEventListener('hashchange', route);
route();

// For debugging and the browser tests.
window.fhirsub = { client, feed, critical, orders, notifications, subs };
