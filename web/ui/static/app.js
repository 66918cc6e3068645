// The fhirsub dashboard: signs in when the server requires it, then wires
// the shared live-channel client to the feed, the critical results panel,
// the order board, the notification center and the subscription manager.
// Plain ES modules, no build step.
import { getClient } from '/client/index.js';
import { api, isCritical, patientRef, codeText, valueText, interpretation, setUnauthorizedHandler } from './fhir.js';
import { authInfo, token, expiry, claims, signIn, signOut, takeNote, devLogin } from './auth.js';
import { Labels } from './labels.js';
import { isAck, ackFocus, ackTask, loadCritical, WINDOW_MS } from './acks.js';
import { Feed } from './feed.js';
import { CriticalPanel, OrderBoard, Notifications, eventTitle } from './panels.js';
import { SubscriptionManager } from './subs.js';

const $ = (id) => document.getElementById(id);

const info = await authInfo();
const tok = token();
if (info.required && !tok) showSignIn(info);
else start(tok, info);

/** showSignIn asks for a token (or offers the development login). */
function showSignIn(info) {
  $('main').hidden = true;
  $('signin').hidden = false;
  document.querySelector('.tabs').hidden = true;
  $('bell').hidden = true;
  setConn('signed-out', 'Signed out');
  const msg = $('signin-msg');
  const say = (text, kind = 'error') => msg.replaceChildren(Object.assign(document.createElement('div'), { className: `alert alert-${kind}`, textContent: text }));
  const note = takeNote();
  if (note) say(note, 'warn');
  $('signin-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const t = $('signin-token').value.trim().replace(/^Bearer\s+/i, '');
    if (!/^[\w-]+\.[\w-]+\.[\w-]*$/.test(t)) return say('That is not a JWT (three base64url parts separated by dots).');
    const exp = expiry(t);
    if (exp !== null && exp <= Date.now()) return say('That token has expired.');
    signIn(t);
  });
  const dev = $('signin-dev');
  dev.hidden = !info.devLogin;
  dev.addEventListener('click', async () => {
    dev.disabled = true;
    try {
      signIn(await devLogin());
    } catch (err) {
      dev.disabled = false;
      say(`Development login failed: ${err.message}`);
    }
  });
  $('signin-token').focus();
}

function setConn(state, text) {
  const conn = $('conn');
  conn.dataset.state = state;
  conn.querySelector('.label').textContent = text;
}

/** start runs the dashboard, with the tab's token when there is one. */
function start(tok, info) {
  let signingOut = false;
  setUnauthorizedHandler((message) => {
    if (!info.required || signingOut) return;
    signingOut = true;
    signOut(`The server refused the token: ${message}. Sign in again.`);
  });
  const who = tok ? claims(tok).fhirUser ?? claims(tok).sub ?? null : null;
  if (tok && info.required) {
    $('who').hidden = false;
    $('who').textContent = who ?? 'signed in';
    $('sign-out').hidden = false;
    $('sign-out').addEventListener('click', () => signOut());
    const exp = expiry(tok);
    if (exp !== null) setTimeout(() => signOut('Your session expired; sign in again.'), Math.min(exp - Date.now(), 2 ** 31 - 1));
  }

  // Display names of patients and other references, fetched once, cached.
  let relabel = () => {};
  const labels = new Labels(() => relabel());
  const patientLabel = (id) => labels.patient(id);

  const client = getClient(undefined, tok ? { accessToken: tok } : {});
  const feed = new Feed({ viewport: $('feed-viewport'), spacer: $('feed-spacer'), rows: $('feed-rows'), count: $('feed-count'), patientLabel });
  let notifications = null;
  const critical = new CriticalPanel({
    list: $('crit-list'),
    count: $('crit-count'),
    empty: $('crit-empty'),
    status: $('crit-status'),
    patientLabel,
    onAcknowledge: (it) => api('POST', '/Task', ackTask(it.obs, who)),
    onChange: () => notifications?.render(),
  });
  notifications = new Notifications({
    button: $('bell'),
    badge: $('badge'),
    drawer: $('notifications'),
    list: $('notif-list'),
    summary: $('notif-summary'),
    patientLabel,
    unacknowledged: () => critical.size,
    isOpen: (key) => critical.has(key.replace(/^critical_result:/, '')),
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

  const criticalText = (obs) => `${codeText(obs.code)} ${valueText(obs)} (${interpretation(obs)})`;
  function addCritical(obs, patientId, ts) {
    critical.add(obs, patientId, ts);
    if (!critical.has(`Observation/${obs.id}`)) return; // acknowledged already
    notifications.add({ key: `critical_result:Observation/${obs.id}`, kind: 'critical_result', detail: criticalText(obs), patientId, time: ts });
  }

  // The critical results of the last 24 h that nobody acknowledged, from
  // the server: the page shows what happened before it was opened.
  async function reload() {
    critical.setStatus('Loading…');
    const r = await loadCritical();
    if (r.error) return critical.setStatus(`Could not load earlier results: ${r.error}`, true);
    for (const obs of [...r.results].reverse()) addCritical(obs, patientRef(obs), obs.meta?.lastUpdated);
    const hours = Math.round(WINDOW_MS / 3600e3);
    critical.setStatus(r.truncated ? `last ${hours} h, newest ${r.scanned} results checked` : `last ${hours} h, from the server`);
  }
  reload();

  // Connection indicator.
  let everConnected = false;
  client.on('connected', () => {
    setConn('live', 'Live');
    if (everConnected) reload(); // acknowledgements made while away
    everConnected = true;
  });
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

  // The patient of each resource seen: a clinical event about a Task
  // (outside the R4 Patient compartment) names none.
  const refPatient = new Map();
  client.on('update', (update) => {
    // Resources outside the R4 Patient compartment (Task) name their
    // patient in the resource only.
    const u = update.patientId || !update.resource ? update : { ...update, patientId: patientRef(update.resource) };
    if (u.patientId) {
      refPatient.set(`${u.resourceType}/${u.resourceId}`, u.patientId);
      if (refPatient.size > 5000) refPatient.delete(refPatient.keys().next().value);
    }
    if (u.resource) labels.remember(u.resource);
    noteType(u.resourceType);
    feed.add(u);
    if (u.resourceType === 'Observation') {
      if (u.resource && isCritical(u.resource)) addCritical(u.resource, u.patientId, u.timestamp);
      else critical.remove(`Observation/${u.resourceId}`);
    }
    if (u.resource && isAck(u.resource) && ackFocus(u.resource)) critical.acknowledged(ackFocus(u.resource));
    if (u.resourceType === 'ServiceRequest' || u.resourceType === 'MedicationRequest') orders.update(u);
  });

  client.on('clinical_event', (ev) => {
    if (ev.eventType === 'critical_result') return; // from the update, with its resource
    const d = ev.details ?? {};
    const ref = d.resource_type && d.resource_id ? `${d.resource_type}/${d.resource_id}` : '';
    const detail = () => {
      const value = d.value !== undefined ? `${d.value}${d.unit ? ' ' + d.unit : ''}` : '';
      return [labels.ref(ref) ?? d.display ?? d.resource_type, value, d.status].filter(Boolean).join(' · ') || eventTitle(ev.eventType);
    };
    notifications.add({ key: `${ev.eventType}:${ref}:${ev.seq ?? Math.random()}`, kind: ev.eventType, detail, patientId: d.patient_id ?? refPatient.get(ref), time: ev.timestamp });
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
  window.fhirsub = { client, feed, critical, orders, notifications, subs, labels };
}
