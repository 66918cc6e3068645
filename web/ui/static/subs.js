// The subscription manager: list Subscriptions with their $status, create a
// topic-based (Backport) Subscription, inspect $status and $events. Every
// call that fails shows the server's OperationOutcome message.
import { api, params, el, time } from './fhir.js';

const BP = 'http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/';
const BUILTIN = ['critical-result', 'new-order', 'result-available', 'order-status-change', 'task', 'communication'];

function alertBox(msg, kind = 'error') {
  return el('div', { class: `alert alert-${kind}`, role: kind === 'error' ? 'alert' : 'status', text: msg });
}

function statusBadge(s) {
  return el('span', { class: `status-badge st-${s ?? 'unknown'}`, text: s ?? 'unknown' });
}

/** SubscriptionManager owns the Subscriptions view. */
export class SubscriptionManager {
  constructor(root, { client }) {
    this.root = root;
    this.client = client;
    this.topics = [];
    this.q = (sel) => root.querySelector(sel);
    this.tbody = this.q('#subs-body');
    this.listMsg = this.q('#subs-msg');
    this.detail = this.q('#sub-detail');
    this.form = this.q('#sub-form');
    this.formMsg = this.q('#sub-form-msg');
    this.filters = this.q('#sub-filters');
    this.bindings = new Map();
    this.timer = null;
    this.q('#subs-refresh').addEventListener('click', () => this.refresh());
    this.q('#sub-add-filter').addEventListener('click', () => this.addFilterRow());
    this.q('#sub-topic').addEventListener('change', () => this.topicChanged());
    this.q('#sub-channel').addEventListener('change', () => this.channelChanged());
    this.form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      this.create();
    });
    this.channelChanged();
  }

  /** show starts polling while the view is visible; hide stops it. */
  show() {
    if (!this.topics.length) this.loadTopics();
    this.refresh();
    clearInterval(this.timer);
    this.timer = setInterval(() => this.refresh(), 3000);
  }

  hide() {
    clearInterval(this.timer);
    this.timer = null;
  }

  async loadTopics() {
    const sel = this.q('#sub-topic');
    const msg = this.q('#sub-topic-msg');
    const res = await api('GET', '/SubscriptionTopic?_count=200');
    if (res.ok) {
      this.topics = (res.body?.entry ?? []).map((e) => e.resource).filter((t) => t?.url);
      msg.replaceChildren();
    } else {
      msg.replaceChildren(alertBox(`Topics could not be listed (${res.message}); showing the built-in topics.`, 'warn'));
    }
    if (!this.topics.length) {
      this.topics = BUILTIN.map((n) => ({ url: `https://fhirsub.org/SubscriptionTopic/${n}`, title: n.replace(/-/g, ' '), canFilterBy: [] }));
    }
    sel.replaceChildren(...this.topics.map((t) => el('option', { value: t.url, text: `${t.title ?? t.name ?? t.url}` })));
    this.topicChanged();
  }

  topic() {
    return this.topics.find((t) => t.url === this.q('#sub-topic').value);
  }

  topicChanged() {
    const t = this.topic();
    this.q('#sub-topic-desc').textContent = t ? `${t.url}${t.description ? ' — ' + t.description : ''}` : '';
    this.filters.replaceChildren();
  }

  channelChanged() {
    const ws = this.q('#sub-channel').value === 'websocket';
    const ep = this.q('#sub-endpoint');
    ep.closest('label').hidden = ws;
    ep.required = !ws;
  }

  addFilterRow() {
    const t = this.topic();
    const opts = [];
    const seen = new Set();
    for (const f of t?.canFilterBy ?? []) {
      const v = `${f.resource ?? ''}.${f.filterParameter}`;
      if (f.filterParameter && !seen.has(v)) {
        seen.add(v);
        opts.push(el('option', { value: v, text: f.resource ? `${f.resource}.${f.filterParameter}` : f.filterParameter, title: f.description ?? '' }));
      }
    }
    const param = opts.length ? el('select', { class: 'f-param', 'aria-label': 'Filter parameter' }, opts) : el('input', { class: 'f-param', placeholder: 'Observation.patient', 'aria-label': 'Filter parameter' });
    const value = el('input', { class: 'f-value', placeholder: 'Patient/123', 'aria-label': 'Filter value', required: true });
    const row = el('div', { class: 'filter-row' }, param, el('span', { text: '=' }), value, el('button', { type: 'button', class: 'btn btn-small', text: 'Remove', onclick: () => row.remove() }));
    this.filters.append(row);
    value.focus();
  }

  /** subscription builds the Subscription resource from the form. */
  subscription() {
    const f = (sel) => this.q(sel).value.trim();
    const channel = f('#sub-channel');
    const filters = [...this.filters.querySelectorAll('.filter-row')]
      .map((row) => {
        const [type, param] = row.querySelector('.f-param').value.trim().split('.', 2);
        const value = row.querySelector('.f-value').value.trim();
        if (!value) return null;
        return param ? `${type}?${param}=${encodeURIComponent(value).replace(/%2F/g, '/').replace(/%7C/g, '|')}` : `${type}=${value}`;
      })
      .filter(Boolean);
    const sub = {
      resourceType: 'Subscription',
      meta: { profile: [`${BP}backport-subscription`] },
      status: 'requested',
      reason: f('#sub-reason') || 'Created from the fhirsub dashboard',
      criteria: f('#sub-topic'),
      channel: {
        type: channel,
        payload: 'application/fhir+json',
        _payload: { extension: [{ url: `${BP}backport-payload-content`, valueCode: f('#sub-content') }] },
      },
    };
    if (filters.length) sub._criteria = { extension: filters.map((v) => ({ url: `${BP}backport-filter-criteria`, valueString: v })) };
    if (channel === 'rest-hook') sub.channel.endpoint = f('#sub-endpoint');
    const hb = Number(f('#sub-heartbeat'));
    if (hb > 0) sub.channel.extension = [{ url: `${BP}backport-heartbeat-period`, valueUnsignedInt: Math.floor(hb) }];
    return sub;
  }

  async create() {
    const btn = this.q('#sub-create');
    btn.disabled = true;
    this.formMsg.replaceChildren(alertBox('Creating…', 'info'));
    const res = await api('POST', '/Subscription', this.subscription());
    btn.disabled = false;
    if (!res.ok) {
      this.formMsg.replaceChildren(alertBox(`Not created: ${res.message}`));
      return;
    }
    const s = res.body ?? {};
    this.formMsg.replaceChildren(alertBox(`Created Subscription/${s.id} (status ${s.status}).`, 'ok'));
    await this.refresh();
    if (s.id) this.showDetail(s.id);
  }

  async refresh() {
    const res = await api('GET', '/Subscription?_count=100');
    if (!res.ok) {
      this.listMsg.replaceChildren(alertBox(`Subscriptions could not be listed: ${res.message}`));
      return;
    }
    const subs = (res.body?.entry ?? []).map((e) => e.resource).filter(Boolean);
    const statuses = await Promise.all(subs.map((s) => api('GET', `/Subscription/${encodeURIComponent(s.id)}/$status`)));
    const failed = statuses.find((r) => !r.ok);
    this.listMsg.replaceChildren(...(failed ? [alertBox(`$status is not available: ${failed.message}`, 'warn')] : []));
    this.q('#subs-count').textContent = String(subs.length);
    if (!subs.length) {
      this.tbody.replaceChildren(el('tr', {}, el('td', { colspan: '7', class: 'empty', text: 'No Subscriptions yet. Create one with the form.' })));
      return;
    }
    this.tbody.replaceChildren(
      ...subs.map((s, i) => {
        const st = statuses[i].ok ? params(statuses[i].body?.entry?.[0]?.resource) : {};
        const count = st['events-since-subscription-start'];
        const err = s.error ?? (Array.isArray(st.error) ? '' : st.error?.coding?.[0]?.code ?? '');
        return el(
          'tr',
          { 'data-id': s.id },
          el('td', {}, el('code', { text: s.id })),
          el('td', {}, statusBadge(st.status ?? s.status)),
          el('td', { class: 'wrap', text: s.criteria ?? '' }),
          el('td', { class: 'wrap', text: [s.channel?.type, s.channel?.endpoint].filter(Boolean).join(' → ') }),
          el('td', { class: 'num', title: statuses[i].ok ? '' : statuses[i].message, text: count ?? '—' }),
          el('td', { class: 'wrap err', text: err || '' }),
          el('td', {}, el('button', { class: 'btn btn-small', type: 'button', text: 'Details', onclick: () => this.showDetail(s.id), 'aria-label': `Details of Subscription ${s.id}` })),
        );
      }),
    );
  }

  async showDetail(id) {
    const enc = encodeURIComponent(id);
    this.detail.hidden = false;
    const title = el('h3', {}, 'Subscription ', el('code', { text: id }));
    const statusBox = el('div', { class: 'detail-block' }, el('h4', { text: '$status' }), el('p', { class: 'muted', text: 'Loading…' }));
    const eventsBox = el('div', { class: 'detail-block' }, el('h4', { text: 'Recent events ($events)' }), el('p', { class: 'muted', text: 'Loading…' }));
    const bindBox = el('div', { class: 'detail-block' });
    this.detail.replaceChildren(title, statusBox, eventsBox, bindBox);

    const [st, ev, sub] = await Promise.all([api('GET', `/Subscription/${enc}/$status`), api('GET', `/Subscription/${enc}/$events`), api('GET', `/Subscription/${enc}`)]);
    if (st.ok) {
      const p = params(st.body?.entry?.[0]?.resource);
      statusBox.replaceChildren(
        el('h4', { text: '$status' }),
        el(
          'dl',
          { class: 'kv' },
          ...Object.entries(p)
            .filter(([k]) => k !== 'notification-event')
            .flatMap(([k, v]) => [el('dt', { text: k }), el('dd', { text: typeof v === 'object' ? v?.reference ?? JSON.stringify(v) : String(v) })]),
        ),
      );
    } else statusBox.replaceChildren(el('h4', { text: '$status' }), alertBox(st.message));

    if (ev.ok) {
      const events = (ev.body?.entry?.[0]?.resource?.parameter ?? []).filter((x) => x.name === 'notification-event').map((x) => params({ parameter: x.part }));
      eventsBox.replaceChildren(
        el('h4', { text: `Recent events ($events) — ${events.length}` }),
        events.length
          ? el(
              'table',
              { class: 'table compact' },
              el('thead', {}, el('tr', {}, el('th', { text: '#' }), el('th', { text: 'Time' }), el('th', { text: 'Focus' }))),
              el('tbody', {}, ...events.slice(-50).reverse().map((e) => el('tr', {}, el('td', { class: 'num', text: e['event-number'] ?? '' }), el('td', { text: time(e.timestamp) }), el('td', { text: e.focus?.reference ?? '' })))),
            )
          : el('p', { class: 'muted', text: 'No events recorded yet.' }),
      );
    } else eventsBox.replaceChildren(el('h4', { text: 'Recent events ($events)' }), alertBox(ev.message));

    if (sub.ok && sub.body?.channel?.type === 'websocket') this.bindControls(id, bindBox);
  }

  bindControls(id, box) {
    const log = el('ol', { class: 'bind-log' });
    const btn = el('button', { class: 'btn', type: 'button' });
    const update = () => {
      btn.textContent = this.bindings.has(id) ? 'Disconnect websocket' : 'Connect websocket (bind-with-token)';
    };
    btn.addEventListener('click', () => {
      if (this.bindings.has(id)) {
        this.bindings.get(id).close();
        this.bindings.delete(id);
      } else {
        this.bindings.set(
          id,
          this.client.bindSubscription(id, {
            onBundle: (b) => {
              const p = params(b?.entry?.[0]?.resource);
              log.prepend(el('li', { text: `${time()} ${p.type ?? b?.type ?? 'message'} · events ${p['events-since-subscription-start'] ?? '?'}` }));
              while (log.children.length > 50) log.lastChild.remove();
            },
            onError: (e) => log.prepend(el('li', { class: 'err', text: `${time()} ${e.message}` })),
          }),
        );
      }
      update();
    });
    update();
    box.replaceChildren(el('h4', { text: 'Websocket channel' }), btn, log);
  }
}
