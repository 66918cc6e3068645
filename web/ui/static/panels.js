// Side panels of the live view: critical results, the order status board
// and the notification center.
import { codeText, valueText, interpretation, interpretationText, refRange, time, when, el } from './fhir.js';

/**
 * CriticalPanel lists the critical Observations no one has acknowledged.
 * Acknowledgements live on the server (acks.js): acknowledge() stores one
 * through onAcknowledge, and acknowledged() applies one seen on the live
 * feed or at load, from this dashboard or another.
 */
export class CriticalPanel {
  constructor({ list, count, empty, status, patientLabel, onAcknowledge, onChange }) {
    this.list = list;
    this.count = count;
    this.empty = empty;
    this.status = status;
    this.patientLabel = patientLabel;
    this.onAcknowledge = onAcknowledge;
    this.onChange = onChange ?? (() => {});
    this.items = new Map(); // "Observation/id" → item, oldest first
    this.acked = new Set(); // acknowledged on the server
  }

  /** add records a critical Observation (or refreshes it). */
  add(obs, patientId, ts) {
    const key = `Observation/${obs.id}`;
    if (this.acked.has(key)) return;
    const old = this.items.get(key);
    this.items.set(key, {
      key,
      obs,
      test: codeText(obs.code) || 'Observation',
      value: valueText(obs),
      interp: interpretation(obs),
      range: refRange(obs),
      patientId,
      time: obs.effectiveDateTime ?? obs.issued ?? ts,
      error: old?.error ?? null,
    });
    this.render();
  }

  /** has tells whether key is listed (critical and not acknowledged). */
  has(key) {
    return this.items.has(key);
  }

  get size() {
    return this.items.size;
  }

  remove(key) {
    if (this.items.delete(key)) this.render();
  }

  /** acknowledged applies an acknowledgement stored on the server. */
  acknowledged(key) {
    this.acked.add(key);
    if (this.acked.size > 20000) this.acked.delete(this.acked.values().next().value);
    if (this.items.delete(key)) this.render();
    else this.onChange();
  }

  /** acknowledge stores the acknowledgement of key on the server. */
  async acknowledge(key) {
    const it = this.items.get(key);
    if (!it || it.pending) return;
    it.pending = true;
    it.error = null;
    this.render();
    const res = await this.onAcknowledge(it);
    it.pending = false;
    if (res.ok) this.acknowledged(key);
    else {
      it.error = `Not acknowledged: ${res.message}`;
      this.render();
    }
  }

  /** setStatus shows where the list comes from (or why it could not load). */
  setStatus(text, error = false) {
    this.status.textContent = text;
    this.status.classList.toggle('err', error);
  }

  render() {
    const items = [...this.items.values()].sort((a, b) => String(b.time).localeCompare(String(a.time))).slice(0, 100);
    this.count.textContent = String(this.items.size);
    this.count.hidden = this.items.size === 0;
    this.empty.hidden = this.items.size > 0;
    this.list.replaceChildren(
      ...items.map((it) =>
        el(
          'li',
          { class: 'crit-item', 'data-id': it.key },
          el(
            'div',
            { class: 'crit-main' },
            el('span', { class: `flag flag-${it.interp}`, title: interpretationText(it.interp), text: it.interp ?? '!' }),
            el('span', { class: 'crit-test', text: it.test }),
            el('span', { class: 'crit-value', text: it.value }),
          ),
          el(
            'div',
            { class: 'crit-meta' },
            el('span', { text: this.patientLabel(it.patientId) ?? 'unknown patient' }),
            el('span', { text: it.range ? `ref ${it.range}` : '' }),
            el('time', { datetime: it.time, text: when(it.time) }),
          ),
          el('button', {
            class: 'btn btn-small',
            type: 'button',
            disabled: it.pending,
            onclick: () => this.acknowledge(it.key),
            'aria-label': `Acknowledge ${it.test} for ${this.patientLabel(it.patientId) ?? 'patient'}`,
            text: it.pending ? 'Saving…' : 'Acknowledge',
          }),
          it.error ? el('div', { class: 'crit-error', role: 'alert', text: it.error }) : null,
        ),
      ),
    );
    this.onChange();
  }
}

const COLUMNS = [
  ['draft', 'Draft', ['draft']],
  ['active', 'Active', ['active']],
  ['on-hold', 'On hold', ['on-hold']],
  ['completed', 'Completed', ['completed']],
  ['stopped', 'Cancelled / stopped', ['revoked', 'cancelled', 'stopped', 'entered-in-error']],
];
const PER_COLUMN = 30;

/** OrderBoard shows ServiceRequests and MedicationRequests by status. */
export class OrderBoard {
  constructor({ board, patientLabel }) {
    this.board = board;
    this.patientLabel = patientLabel;
    this.orders = new Map();
    this.pending = false;
    this.cols = new Map();
    for (const [id, title] of COLUMNS) {
      const list = el('ol', { class: 'order-list' });
      const n = el('span', { class: 'pill', text: '0' });
      const col = el('section', { class: 'order-col', 'data-status': id, 'aria-label': title }, el('h3', {}, title, ' ', n), list);
      board.append(col);
      this.cols.set(id, { list, n });
    }
  }

  update(u) {
    const key = `${u.resourceType}/${u.resourceId}`;
    if (u.action === 'deleted' || !u.resource) this.orders.delete(key);
    else {
      const r = u.resource;
      this.orders.delete(key); // re-insert: most recent last
      this.orders.set(key, {
        key,
        type: u.resourceType === 'MedicationRequest' ? 'Rx' : r.category?.[0] ? codeText(r.category[0]) || 'Order' : 'Order',
        what: codeText(r.code ?? r.medicationCodeableConcept) || u.resourceType,
        status: r.status,
        priority: r.priority,
        patientId: u.patientId,
        time: u.timestamp ?? r.authoredOn,
      });
      if (this.orders.size > 2000) this.orders.delete(this.orders.keys().next().value);
    }
    if (!this.pending) {
      this.pending = true;
      requestAnimationFrame(() => {
        this.pending = false;
        this.render();
      });
    }
  }

  render() {
    const byCol = new Map(COLUMNS.map(([id]) => [id, []]));
    for (const o of this.orders.values()) {
      const col = COLUMNS.find(([, , s]) => s.includes(o.status));
      if (col) byCol.get(col[0]).push(o);
    }
    for (const [id, { list, n }] of this.cols) {
      const all = byCol.get(id).reverse();
      n.textContent = String(all.length);
      const items = all.slice(0, PER_COLUMN).map((o) =>
        el(
          'li',
          { class: `order-card${o.priority && o.priority !== 'routine' ? ' urgent' : ''}`, 'data-id': o.key },
          el('div', { class: 'order-what', text: o.what }),
          el(
            'div',
            { class: 'order-meta' },
            el('span', { text: this.patientLabel(o.patientId) ?? '—' }),
            o.priority && o.priority !== 'routine' ? el('span', { class: 'prio', text: o.priority.toUpperCase() }) : null,
            el('span', { class: 'muted', text: `${o.type} · ${time(o.time)}` }),
          ),
        ),
      );
      if (all.length > PER_COLUMN) items.push(el('li', { class: 'more', text: `+ ${all.length - PER_COLUMN} more` }));
      list.replaceChildren(...items);
    }
  }
}

const TITLES = {
  critical_result: 'Critical result',
  new_order: 'New order',
  result_available: 'Result available',
  order_status_change: 'Order status changed',
  task: 'Task',
  communication: 'Message',
};

/**
 * Notifications is the notification center. Its badge counts what needs a
 * clinician: the critical results not yet acknowledged (unacknowledged()),
 * not every event. Other clinical events are listed for information.
 */
export class Notifications {
  constructor({ button, badge, drawer, list, summary, patientLabel, unacknowledged, isOpen }) {
    this.button = button;
    this.badge = badge;
    this.drawer = drawer;
    this.list = list;
    this.summary = summary;
    this.patientLabel = patientLabel;
    this.unacknowledged = unacknowledged;
    this.isOpen = isOpen; // key → still unacknowledged?
    this.items = []; // newest last
    this.keys = new Set();
    button.addEventListener('click', () => this.toggle());
    document.addEventListener('keydown', (ev) => {
      if (ev.key === 'Escape' && !drawer.hidden) this.toggle(false);
    });
  }

  /** add records a notification once per key; detail is a string or a function (drawn when shown). */
  add({ key, kind, detail, patientId, time: ts }) {
    if (this.keys.has(key)) return;
    this.keys.add(key);
    this.items.push({ key, kind, detail, patientId, time: ts ?? new Date().toISOString() });
    if (this.items.length > 500) this.keys.delete(this.items.shift().key);
    this.render();
  }

  toggle(open = this.drawer.hidden) {
    this.drawer.hidden = !open;
    this.button.setAttribute('aria-expanded', String(open));
    if (open) this.render();
  }

  render() {
    const n = this.unacknowledged();
    this.badge.textContent = n > 99 ? '99+' : String(n);
    this.badge.hidden = n === 0;
    this.button.setAttribute('aria-label', `Notifications, ${n} unacknowledged critical result${n === 1 ? '' : 's'}`);
    if (this.drawer.hidden) return;
    this.summary.textContent = n ? `${n} critical result${n === 1 ? '' : 's'} to acknowledge (Critical results panel)` : 'No critical result to acknowledge.';
    const items = this.items.slice(-100).reverse();
    this.list.replaceChildren(
      ...(items.length
        ? items.map((it) => {
            const open = it.kind === 'critical_result' && this.isOpen(it.key);
            const acked = it.kind === 'critical_result' && !open;
            return el(
              'li',
              { class: `notif notif-${it.kind}${open ? ' unread' : ''}`, 'data-key': it.key },
              el('div', { class: 'notif-title' }, el('strong', { text: `${TITLES[it.kind] ?? it.kind}${acked ? ' · acknowledged' : ''}` }), el('time', { datetime: it.time, text: time(it.time) })),
              el('div', { class: 'notif-detail', text: typeof it.detail === 'function' ? it.detail() : it.detail }),
              el('div', { class: 'muted', text: this.patientLabel(it.patientId) ?? '' }),
            );
          })
        : [el('li', { class: 'empty', text: 'No clinical events yet.' })]),
    );
  }
}

/** eventTitle names a clinical event type. */
export function eventTitle(t) {
  return TITLES[t] ?? t;
}
