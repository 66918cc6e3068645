// The live feed: every update, newest first, filterable by patient and
// resource type. Rendering is windowed: only the rows in view (plus a small
// overscan) exist in the DOM, so 10,000 events cost the same as 50.
import { summary, time, isCritical, el } from './fhir.js';

const ROW = 28; // px, must match .feed-row height in app.css
const OVERSCAN = 8;

/** Feed keeps at most `max` events and renders a window of them. */
export class Feed {
  constructor({ viewport, spacer, rows, count, max = 10000, patientLabel }) {
    this.viewport = viewport;
    this.spacer = spacer;
    this.rows = rows;
    this.count = count;
    this.max = max;
    this.patientLabel = patientLabel;
    this.events = []; // oldest first
    this.shown = []; // filtered, oldest first
    this.filter = { patient: '', type: '' };
    this.paused = false;
    this.pending = false;
    this.pool = [];
    this.total = 0;
    this.added = 0; // rows shown since the last render
    viewport.addEventListener('scroll', () => this.schedule(), { passive: true });
    new ResizeObserver(() => this.schedule()).observe(viewport);
  }

  matches(e) {
    const f = this.filter;
    if (f.type && e.resourceType !== f.type) return false;
    if (f.patient) {
      const p = (e.patientId ?? '').toLowerCase();
      const name = (this.patientLabel(e.patientId) ?? '').toLowerCase();
      if (!p.includes(f.patient) && !name.includes(f.patient)) return false;
    }
    return true;
  }

  /** add appends one update (as emitted by the client). */
  add(u) {
    const e = {
      seq: u.seq,
      time: u.timestamp ?? new Date().toISOString(),
      action: u.action,
      resourceType: u.resourceType,
      resourceId: u.resourceId,
      patientId: u.patientId,
      text: summary(u.resourceType, u.resource),
      critical: isCritical(u.resource),
    };
    this.total++;
    this.events.push(e);
    if (this.events.length > this.max + 500) this.events.splice(0, this.events.length - this.max);
    if (this.matches(e)) {
      this.shown.push(e);
      if (this.shown.length > this.max + 500) this.shown.splice(0, this.shown.length - this.max);
      this.added++;
    }
    this.schedule();
  }

  setFilter(f) {
    this.filter = { patient: (f.patient ?? '').trim().toLowerCase(), type: f.type ?? '' };
    this.shown = this.events.filter((e) => this.matches(e));
    if (this.shown.length > this.max) this.shown.splice(0, this.shown.length - this.max);
    this.viewport.scrollTop = 0;
    this.added = 0;
    this.schedule();
  }

  clear() {
    this.events = [];
    this.shown = [];
    this.schedule();
  }

  setPaused(p) {
    this.paused = p;
    if (!p) this.schedule();
  }

  schedule() {
    if (this.pending || this.paused) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.render();
    });
  }

  render() {
    const n = Math.min(this.shown.length, this.max);
    this.spacer.style.height = `${n * ROW}px`;
    // Keep the rows under the reader's eyes still when they scrolled down.
    if (this.added && this.viewport.scrollTop > 0) this.viewport.scrollTop += this.added * ROW;
    this.added = 0;
    const top = this.viewport.scrollTop;
    const height = this.viewport.clientHeight || 600;
    const first = Math.max(0, Math.floor(top / ROW) - OVERSCAN);
    const last = Math.min(n, Math.ceil((top + height) / ROW) + OVERSCAN);
    this.rows.style.transform = `translateY(${first * ROW}px)`;
    const want = last - first;
    while (this.pool.length < want) this.pool.push(this.makeRow());
    for (let i = 0; i < this.pool.length; i++) {
      const row = this.pool[i];
      if (i >= want) {
        if (row.el.parentNode) row.el.remove();
        continue;
      }
      const e = this.shown[this.shown.length - 1 - (first + i)];
      this.fill(row, e);
      if (!row.el.parentNode) this.rows.append(row.el);
    }
    const filtered = this.filter.patient || this.filter.type;
    this.count.textContent = filtered
      ? `${this.shown.length.toLocaleString()} of ${this.events.length.toLocaleString()} events`
      : `${this.events.length.toLocaleString()} events`;
    this.viewport.setAttribute('aria-rowcount', String(n));
  }

  makeRow() {
    const cells = {
      time: el('span', { class: 'c-time' }),
      action: el('span', { class: 'c-action' }),
      type: el('span', { class: 'c-type' }),
      text: el('span', { class: 'c-text' }),
      patient: el('span', { class: 'c-patient' }),
    };
    const row = el('div', { class: 'feed-row', role: 'row' }, cells.time, cells.action, cells.type, cells.text, cells.patient);
    return { el: row, cells, e: null, label: null };
  }

  fill(row, e) {
    const label = this.patientLabel(e.patientId);
    if (row.e === e && row.label === label) return;
    row.e = e;
    row.label = label;
    const c = row.cells;
    c.time.textContent = time(e.time);
    c.action.textContent = e.action;
    c.action.className = `c-action act-${e.action}`;
    c.type.textContent = e.resourceType;
    c.text.textContent = e.text;
    c.text.title = `${e.resourceType}/${e.resourceId}${e.seq ? ` · seq ${e.seq}` : ''}`;
    c.patient.textContent = label ?? '—';
    row.el.classList.toggle('critical', e.critical);
    row.el.dataset.id = `${e.resourceType}/${e.resourceId}`;
  }
}
