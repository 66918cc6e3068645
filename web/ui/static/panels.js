// Side panels of the live view: critical results, the order status board
// and the notification center.
import { codeText, valueText, interpretation, interpretationText, refRange, time, el } from './fhir.js';

/** CriticalPanel lists critical Observations until acknowledged. */
export class CriticalPanel {
  constructor({ list, count, empty, patientLabel, onAcknowledge }) {
    this.list = list;
    this.count = count;
    this.empty = empty;
    this.patientLabel = patientLabel;
    this.onAcknowledge = onAcknowledge;
    this.items = new Map(); // "Observation/id" → item
    this.acked = new Set(JSON.parse(sessionStorage.getItem('fhirsub.acked') ?? '[]'));
  }

  /** add records a critical Observation (or refreshes it). */
  add(obs, patientId, ts) {
    const key = `Observation/${obs.id}`;
    if (this.acked.has(key)) return;
    this.items.set(key, {
      key,
      test: codeText(obs.code) || 'Observation',
      value: valueText(obs),
      interp: interpretation(obs),
      range: refRange(obs),
      patientId,
      time: obs.effectiveDateTime ?? obs.issued ?? ts,
    });
    this.render();
  }

  remove(key) {
    if (this.items.delete(key)) this.render();
  }

  acknowledge(key) {
    this.acked.add(key);
    sessionStorage.setItem('fhirsub.acked', JSON.stringify([...this.acked].slice(-500)));
    this.items.delete(key);
    this.onAcknowledge?.(key);
    this.render();
  }

  render() {
    const items = [...this.items.values()].reverse().slice(0, 100);
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
            el('time', { datetime: it.time, text: time(it.time) }),
          ),
          el('button', { class: 'btn btn-small', type: 'button', onclick: () => this.acknowledge(it.key), 'aria-label': `Acknowledge ${it.test} for ${this.patientLabel(it.patientId) ?? 'patient'}`, text: 'Acknowledge' }),
        ),
      ),
    );
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

/** Notifications is the notification center with its unread badge. */
export class Notifications {
  constructor({ button, badge, drawer, list, markRead, patientLabel }) {
    this.button = button;
    this.badge = badge;
    this.drawer = drawer;
    this.list = list;
    this.patientLabel = patientLabel;
    this.items = []; // newest last
    this.keys = new Set();
    this.unread = 0;
    button.addEventListener('click', () => this.toggle());
    markRead.addEventListener('click', () => this.markAllRead());
    document.addEventListener('keydown', (ev) => {
      if (ev.key === 'Escape' && !drawer.hidden) this.toggle(false);
    });
  }

  /** add records a notification once per key. */
  add({ key, kind, detail, patientId, time: ts }) {
    if (this.keys.has(key)) return;
    this.keys.add(key);
    this.items.push({ key, kind, detail, patientId, time: ts ?? new Date().toISOString(), read: false });
    if (this.items.length > 500) this.keys.delete(this.items.shift().key);
    this.unread++;
    this.render();
  }

  /** read marks the notification with this key read. */
  read(key) {
    const it = this.items.find((x) => x.key === key);
    if (it && !it.read) {
      it.read = true;
      this.unread--;
      this.render();
    }
  }

  markAllRead() {
    for (const it of this.items) it.read = true;
    this.unread = 0;
    this.render();
  }

  toggle(open = this.drawer.hidden) {
    this.drawer.hidden = !open;
    this.button.setAttribute('aria-expanded', String(open));
    if (open) this.render();
  }

  render() {
    this.badge.textContent = this.unread > 99 ? '99+' : String(this.unread);
    this.badge.hidden = this.unread === 0;
    this.button.setAttribute('aria-label', `Notifications, ${this.unread} unread`);
    if (this.drawer.hidden) return;
    const items = this.items.slice(-100).reverse();
    this.list.replaceChildren(
      ...(items.length
        ? items.map((it) =>
            el(
              'li',
              { class: `notif notif-${it.kind}${it.read ? '' : ' unread'}` },
              el('div', { class: 'notif-title' }, el('strong', { text: TITLES[it.kind] ?? it.kind }), el('time', { datetime: it.time, text: time(it.time) })),
              el('div', { class: 'notif-detail', text: it.detail }),
              el('div', { class: 'muted', text: this.patientLabel(it.patientId) ?? '' }),
            ),
          )
        : [el('li', { class: 'empty', text: 'No notifications yet.' })]),
    );
  }
}

/** eventTitle names a clinical event type. */
export function eventTitle(t) {
  return TITLES[t] ?? t;
}
