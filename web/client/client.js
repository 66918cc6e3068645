// @fhirsub/client: a reconnecting client for fhirsub's live browser channel
// (the legacy JSON protocol on /ws). One client per server URL, shared by
// every caller on the page (getClient).
//
// Delivery guarantees: messages carry the server's change seq. The client
// remembers the highest seq seen (in sessionStorage, with its client_id) and
// after every reconnect re-sends its subscriptions, then asks the server to
// resume from that seq; anything delivered twice is dropped by seq.

const DEFAULTS = {
  initialDelay: 500, // first reconnect delay, ms
  maxDelay: 30000, // reconnect delay cap, ms
  jitter: 0.5, // a delay is drawn from [d*(1-jitter), d]
  heartbeatInterval: 25000, // ping when nothing was received for this long, ms
  heartbeatTimeout: 10000, // reconnect when no pong arrives within this, ms
  maxQueue: 1000, // outgoing messages kept while disconnected
  dedupWindow: 4096, // recent seqs remembered to drop duplicates
};

const OPEN = 1;

/** The events a Client emits. */
export const EVENTS = Object.freeze(['update', 'clinical_event', 'connected', 'disconnected', 'error', 'message']);

const clients = new Map();

/**
 * getClient returns the one client for a server, creating it on first use.
 * url is the server base (http(s)://host[/path] or ws(s)://host/ws); without
 * it the page's own host is used. options are only used on creation.
 */
export function getClient(url, options = {}) {
  const endpoint = endpointFor(url, options.location ?? globalThis.location);
  let c = clients.get(endpoint);
  if (!c) {
    c = new Client({ ...options, url: endpoint });
    clients.set(endpoint, c);
  }
  return c;
}

/** closeAllClients closes every shared client (tests, page teardown). */
export function closeAllClients() {
  for (const c of [...clients.values()]) c.close();
  clients.clear();
}

/**
 * endpointFor resolves the websocket endpoint (without query) of a server.
 * @param {string|undefined} url
 * @param {{protocol:string, host:string}|undefined} loc
 */
export function endpointFor(url, loc) {
  if (!url) {
    if (!loc || !loc.host) throw new Error('fhirsub client: no url given and no page location to derive it from');
    url = `${loc.protocol === 'https:' ? 'wss:' : 'ws:'}//${loc.host}/ws`;
  }
  let u;
  try {
    u = new URL(url, loc && loc.host ? `${loc.protocol}//${loc.host}` : undefined);
  } catch {
    throw new Error(`fhirsub client: invalid url ${JSON.stringify(url)}`);
  }
  if (u.protocol === 'http:') u.protocol = 'ws:';
  else if (u.protocol === 'https:') u.protocol = 'wss:';
  else if (u.protocol !== 'ws:' && u.protocol !== 'wss:') {
    throw new Error(`fhirsub client: unsupported url scheme ${u.protocol}`);
  }
  if (!u.pathname.endsWith('/ws')) u.pathname = u.pathname.replace(/\/+$/, '') + '/ws';
  u.search = '';
  u.hash = '';
  return u.toString();
}

/** httpBaseFor turns a websocket endpoint back into the FHIR base URL. */
export function httpBaseFor(endpoint) {
  const u = new URL(endpoint);
  u.protocol = u.protocol === 'wss:' ? 'https:' : 'http:';
  u.pathname = u.pathname.replace(/\/ws$/, '');
  return u.toString().replace(/\/+$/, '');
}

/** memoryStorage is a Storage look-alike kept in memory. */
export function memoryStorage() {
  const m = new Map();
  return {
    getItem: (k) => (m.has(k) ? m.get(k) : null),
    setItem: (k, v) => void m.set(k, String(v)),
    removeItem: (k) => void m.delete(k),
  };
}

function defaultStorage() {
  try {
    if (globalThis.sessionStorage) return globalThis.sessionStorage;
  } catch {
    // access denied (privacy mode, sandboxed iframe)
  }
  return memoryStorage();
}

function stripPatient(id) {
  return typeof id === 'string' && id.startsWith('Patient/') ? id.slice(8) : id;
}

/**
 * matchesFilter tells whether an update passes a subscription's filter.
 * ['*'] or [] resource types mean all; [] patients mean all.
 */
export function matchesFilter(filter, update) {
  const types = filter.resourceTypes ?? ['*'];
  if (types.length > 0 && !types.includes('*') && !types.includes(update.resourceType)) return false;
  const patients = filter.patientIds ?? [];
  if (patients.length === 0) return true;
  const p = stripPatient(update.patientId);
  return patients.some((x) => stripPatient(x) === p);
}

/**
 * Client is a connection to one server's live channel. Construct it through
 * getClient unless you need a private instance (tests).
 */
export class Client {
  /**
   * @param {object} opts
   * @param {string} opts.url websocket endpoint (ws(s)://host/ws)
   * @param {string} [opts.accessToken] bearer token sent as access_token
   * @param {Function} [opts.WebSocket] WebSocket constructor
   * @param {{setTimeout:Function, clearTimeout:Function}} [opts.timers]
   * @param {() => number} [opts.random]
   * @param {Storage} [opts.storage]
   * @param {Function} [opts.fetch]
   */
  constructor(opts) {
    if (!opts || !opts.url) throw new Error('fhirsub client: url is required');
    this.url = endpointFor(opts.url, opts.location ?? globalThis.location);
    this.accessToken = opts.accessToken ?? null;
    this.WebSocket = opts.WebSocket ?? globalThis.WebSocket;
    if (typeof this.WebSocket !== 'function') throw new Error('fhirsub client: no WebSocket implementation');
    this.timers = opts.timers ?? { setTimeout: (f, ms) => setTimeout(f, ms), clearTimeout: (t) => clearTimeout(t) };
    this.random = opts.random ?? Math.random;
    this.storage = opts.storage ?? defaultStorage();
    this.fetch = opts.fetch ?? (globalThis.fetch ? (...a) => globalThis.fetch(...a) : null);
    this.cfg = { ...DEFAULTS };
    for (const k of Object.keys(DEFAULTS)) if (typeof opts[k] === 'number') this.cfg[k] = opts[k];

    this.key = `fhirsub:${this.url}`;
    this.clientId = this._loadClientId();
    this.lastSeq = Number(this.storage.getItem(`${this.key}:seq`)) || 0;
    this.seen = new Map(); // recent data-message key → seq
    this.seenFloor = 0;

    this.subs = new Map(); // id → {resourceTypes, patientIds, onUpdate}
    this.queue = [];
    this.listeners = new Map();
    this.ws = null;
    this.connected = false;
    this.closed = false;
    this.attempt = 0;
    this.reconnectTimer = null;
    this.pingTimer = null;
    this.pongTimer = null;
    this.nextSub = 0;
  }

  _loadClientId() {
    const k = `${this.key}:clientId`;
    let id = this.storage.getItem(k);
    if (!id) {
      id = 'c_' + randomID(this.random, 16);
      this.storage.setItem(k, id);
    }
    return id;
  }

  /** socketURL is the URL the next connection dials. */
  socketURL() {
    const u = new URL(this.url);
    u.searchParams.set('client_id', this.clientId);
    if (this.accessToken) u.searchParams.set('access_token', this.accessToken);
    return u.toString();
  }

  /** on registers fn for an event and returns a function removing it. */
  on(event, fn) {
    if (!EVENTS.includes(event)) throw new Error(`fhirsub client: unknown event ${JSON.stringify(event)}`);
    if (!this.listeners.has(event)) this.listeners.set(event, new Set());
    this.listeners.get(event).add(fn);
    return () => this.listeners.get(event)?.delete(fn);
  }

  _emit(event, payload) {
    for (const fn of [...(this.listeners.get(event) ?? [])]) {
      try {
        fn(payload);
      } catch (err) {
        if (event !== 'error') this._emit('error', { code: 'listener', message: String(err && err.message ? err.message : err) });
      }
    }
  }

  /** connect opens the connection if it is not open or opening. */
  connect() {
    if (this.closed || this.ws || this.reconnectTimer !== null) return;
    let ws;
    try {
      ws = new this.WebSocket(this.socketURL());
    } catch (err) {
      this._emit('error', { code: 'connect', message: String(err && err.message ? err.message : err) });
      this._scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.onopen = () => this.ws === ws && this._onOpen();
    ws.onmessage = (ev) => this.ws === ws && this._onMessage(ev.data);
    ws.onclose = () => this.ws === ws && this._onClose();
    ws.onerror = () => {
      // onclose follows; nothing to do here
    };
  }

  /**
   * subscribe registers a filter; the server then sends matching updates.
   * It returns the subscription id. onUpdate, if given, receives only the
   * updates matching this filter.
   */
  subscribe({ resourceTypes = ['*'], patientIds = [], onUpdate } = {}) {
    if (!Array.isArray(resourceTypes) || !Array.isArray(patientIds)) {
      throw new Error('fhirsub client: resourceTypes and patientIds must be arrays');
    }
    const id = `sub_${++this.nextSub}_${randomID(this.random, 6)}`;
    const sub = { resourceTypes: [...resourceTypes], patientIds: patientIds.map(stripPatient), onUpdate };
    this.subs.set(id, sub);
    if (this.connected) this._sendNow(subscribeMessage(id, sub));
    else this.connect();
    return id;
  }

  /** unsubscribe removes a subscription made with subscribe. */
  unsubscribe(id) {
    if (!this.subs.delete(id)) return;
    if (this.connected) this._sendNow({ type: 'unsubscribe', data: { subscription_id: id } });
  }

  /** send sends a protocol message, queueing it while disconnected. */
  send(msg) {
    if (this.connected) {
      this._sendNow(msg);
      return;
    }
    if (this.queue.length >= this.cfg.maxQueue) this.queue.shift();
    this.queue.push(msg);
    this.connect();
  }

  _sendNow(msg) {
    try {
      this.ws.send(JSON.stringify(msg));
    } catch (err) {
      this._emit('error', { code: 'send', message: String(err && err.message ? err.message : err) });
    }
  }

  _onOpen() {
    this.connected = true;
    this.attempt = 0;
    for (const [id, sub] of this.subs) this._sendNow(subscribeMessage(id, sub));
    if (this.lastSeq > 0) this._sendNow({ type: 'resume', data: { since: this.lastSeq } });
    const q = this.queue;
    this.queue = [];
    for (const m of q) this._sendNow(m);
    this._armHeartbeat();
    this._emit('connected', { clientId: this.clientId, lastSeq: this.lastSeq });
  }

  _onMessage(data) {
    this._armHeartbeat();
    let msg;
    try {
      msg = JSON.parse(typeof data === 'string' ? data : String(data));
    } catch {
      this._emit('error', { code: 'parse', message: 'server sent a message that is not JSON' });
      return;
    }
    if (!msg || typeof msg !== 'object') return;
    const data_ = msg.data ?? {};
    // Only data messages count for replay and de-duplication; control
    // messages (subscribed, resumed, …) carry the server's head seq, which
    // says nothing about what this client received. One change can yield an
    // update and clinical events under the same seq.
    if ((msg.type === 'update' || msg.type === 'clinical_event') && typeof msg.seq === 'number') {
      if (!this._firstSighting(msg.seq, `${msg.type}:${msg.seq}:${data_.event_type ?? ''}`)) return;
    }
    this._emit('message', msg);
    switch (msg.type) {
      case 'update': {
        const u = {
          action: data_.action,
          resourceType: data_.resource_type,
          resourceId: data_.resource_id,
          patientId: data_.patient_id ?? null,
          resource: data_.resource ?? null,
          seq: msg.seq ?? null,
          timestamp: msg.timestamp ?? null,
        };
        this._emit('update', u);
        for (const sub of [...this.subs.values()]) {
          if (sub.onUpdate && matchesFilter(sub, u)) {
            try {
              sub.onUpdate(u);
            } catch (err) {
              this._emit('error', { code: 'listener', message: String(err && err.message ? err.message : err) });
            }
          }
        }
        break;
      }
      case 'clinical_event':
        this._emit('clinical_event', {
          eventType: data_.event_type,
          details: data_.details ?? {},
          seq: msg.seq ?? null,
          timestamp: msg.timestamp ?? null,
        });
        break;
      case 'error':
        this._emit('error', { code: data_.code ?? 'server', message: data_.message ?? 'server error' });
        break;
      default: // pong, subscribed, unsubscribed: liveness only
    }
  }

  // _firstSighting records a data message (its seq and key) and reports
  // whether it is new. Keys older than the window are judged by seq alone.
  _firstSighting(seq, key) {
    if (seq < this.seenFloor || this.seen.has(key)) return false;
    this.seen.set(key, seq);
    if (this.seen.size > this.cfg.dedupWindow) {
      const [oldest, oldSeq] = this.seen.entries().next().value;
      this.seen.delete(oldest);
      if (oldSeq > this.seenFloor) this.seenFloor = oldSeq;
    }
    if (seq > this.lastSeq) {
      this.lastSeq = seq;
      this.storage.setItem(`${this.key}:seq`, String(seq));
    }
    return true;
  }

  _armHeartbeat() {
    this._clearHeartbeat();
    if (!this.connected) return;
    this.pingTimer = this.timers.setTimeout(() => {
      this.pingTimer = null;
      this._sendNow({ type: 'ping' });
      this.pongTimer = this.timers.setTimeout(() => {
        this.pongTimer = null;
        this._emit('error', { code: 'heartbeat', message: 'no answer to ping; reconnecting' });
        this._drop();
      }, this.cfg.heartbeatTimeout);
    }, this.cfg.heartbeatInterval);
  }

  _clearHeartbeat() {
    if (this.pingTimer !== null) this.timers.clearTimeout(this.pingTimer);
    if (this.pongTimer !== null) this.timers.clearTimeout(this.pongTimer);
    this.pingTimer = this.pongTimer = null;
  }

  // _drop abandons the current socket (dead or closing) and reconnects.
  _drop() {
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      try {
        ws.close();
      } catch {
        // already closed
      }
    }
    this._onClose();
  }

  _onClose() {
    const was = this.connected;
    this.ws = null;
    this.connected = false;
    this._clearHeartbeat();
    if (was) this._emit('disconnected', { willReconnect: !this.closed });
    if (!this.closed) this._scheduleReconnect();
  }

  /** nextDelay is the wait before reconnect attempt n (0-based), in ms. */
  nextDelay(n) {
    const base = Math.min(this.cfg.maxDelay, this.cfg.initialDelay * 2 ** Math.min(n, 30));
    return Math.round(base * (1 - this.cfg.jitter * this.random()));
  }

  _scheduleReconnect() {
    if (this.reconnectTimer !== null || this.closed) return;
    const d = this.nextDelay(this.attempt++);
    this.reconnectTimer = this.timers.setTimeout(() => {
      this.reconnectTimer = null;
      this.connect();
    }, d);
  }

  /** close disconnects for good and forgets the shared instance. */
  close() {
    this.closed = true;
    if (this.reconnectTimer !== null) this.timers.clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    const ws = this.ws;
    this._clearHeartbeat();
    if (ws) {
      this.ws = null;
      try {
        ws.close();
      } catch {
        // already closed
      }
    }
    if (this.connected) {
      this.connected = false;
      this._emit('disconnected', { willReconnect: false });
    }
    if (clients.get(this.url) === this) clients.delete(this.url);
  }

  /**
   * bindSubscription connects a websocket-channel Subscription (Backport
   * IG): it asks $get-ws-binding-token, dials the returned websocket-url and
   * sends bind-with-token. onBundle receives each notification Bundle
   * (handshake, heartbeat, event-notification). The returned handle's
   * close() ends it. It rebinds with a fresh token after a drop.
   */
  bindSubscription(id, { onBundle, onError, baseURL } = {}) {
    if (!id) throw new Error('fhirsub client: bindSubscription needs a Subscription id');
    if (!this.fetch) throw new Error('fhirsub client: no fetch implementation');
    const base = (baseURL ?? httpBaseFor(this.url)).replace(/\/+$/, '');
    const state = { closed: false, ws: null, timer: null, attempt: 0 };
    const fail = (err) => {
      const e = { code: 'bind', message: String(err && err.message ? err.message : err) };
      if (onError) onError(e);
      else this._emit('error', e);
    };
    const retry = () => {
      if (state.closed || state.timer !== null) return;
      state.timer = this.timers.setTimeout(() => {
        state.timer = null;
        run();
      }, this.nextDelay(state.attempt++));
    };
    const run = async () => {
      try {
        const headers = { Accept: 'application/fhir+json' };
        if (this.accessToken) headers.Authorization = `Bearer ${this.accessToken}`;
        const resp = await this.fetch(`${base}/Subscription/${encodeURIComponent(id)}/$get-ws-binding-token`, { method: 'POST', headers });
        const body = await resp.json().catch(() => null);
        if (!resp.ok) throw new Error(outcomeMessage(body) ?? `$get-ws-binding-token: HTTP ${resp.status}`);
        const p = parameters(body);
        if (!p.token || !p['websocket-url']) throw new Error('$get-ws-binding-token: answer lacks token or websocket-url');
        if (state.closed) return;
        const ws = new this.WebSocket(p['websocket-url']);
        state.ws = ws;
        ws.onopen = () => {
          state.attempt = 0;
          ws.send(`bind-with-token ${p.token}`);
        };
        ws.onmessage = (ev) => {
          let b;
          try {
            b = JSON.parse(ev.data);
          } catch {
            return fail(new Error('binding socket sent a message that is not JSON'));
          }
          if (onBundle) onBundle(b);
        };
        ws.onclose = () => {
          if (state.ws === ws) state.ws = null;
          retry();
        };
      } catch (err) {
        fail(err);
        retry();
      }
    };
    run();
    return {
      close: () => {
        state.closed = true;
        if (state.timer !== null) this.timers.clearTimeout(state.timer);
        if (state.ws) state.ws.close();
      },
    };
  }
}

function subscribeMessage(id, sub) {
  return { type: 'subscribe', data: { subscription_id: id, resource_types: sub.resourceTypes, patient_ids: sub.patientIds } };
}

function randomID(random, n) {
  const a = 'abcdefghijklmnopqrstuvwxyz0123456789';
  let s = '';
  for (let i = 0; i < n; i++) s += a[Math.floor(random() * a.length) % a.length];
  return s;
}

/** parameters flattens a FHIR Parameters resource into {name: value}. */
export function parameters(p) {
  const out = {};
  for (const x of (p && p.parameter) || []) {
    const k = Object.keys(x).find((key) => key.startsWith('value'));
    if (k) out[x.name] = x[k];
  }
  return out;
}

/** outcomeMessage returns the text of an OperationOutcome, or null. */
export function outcomeMessage(body) {
  if (!body || body.resourceType !== 'OperationOutcome') return null;
  const msgs = (body.issue || []).map((i) => i.diagnostics || (i.details && i.details.text) || i.code).filter(Boolean);
  return msgs.length ? msgs.join('; ') : 'the server returned an OperationOutcome without details';
}
