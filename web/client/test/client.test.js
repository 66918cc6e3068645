import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Client, getClient, closeAllClients, endpointFor, memoryStorage, matchesFilter } from '../index.js';
import { FakeClock, makeFakeWebSocket, update } from './fakes.js';

function setup(opts = {}) {
  const clock = new FakeClock();
  const WS = makeFakeWebSocket();
  const storage = opts.storage ?? memoryStorage();
  const client = new Client({
    url: 'http://fhir.test:8080',
    WebSocket: WS,
    timers: clock,
    random: opts.random ?? (() => 0.5),
    storage,
    ...opts.client,
  });
  return { clock, WS, storage, client };
}

test('endpoint is derived from the page or a base URL', () => {
  assert.equal(endpointFor(undefined, { protocol: 'https:', host: 'ehr.example.org' }), 'wss://ehr.example.org/ws');
  assert.equal(endpointFor(undefined, { protocol: 'http:', host: 'localhost:8080' }), 'ws://localhost:8080/ws');
  assert.equal(endpointFor('http://localhost:8080/'), 'ws://localhost:8080/ws');
  assert.equal(endpointFor('https://h/fhir'), 'wss://h/fhir/ws');
  assert.equal(endpointFor('ws://h/ws?x=1'), 'ws://h/ws');
  assert.throws(() => endpointFor('ftp://h'), /unsupported url scheme/);
  assert.throws(() => endpointFor(undefined, undefined), /no url/);
});

test('subscribe connects with client_id and sends the filter once open', () => {
  const { WS, client } = setup();
  const events = [];
  client.on('connected', () => events.push('connected'));
  const id = client.subscribe({ resourceTypes: ['Observation'], patientIds: ['Patient/patient-123'] });
  assert.equal(WS.instances.length, 1);
  const u = new URL(WS.last.url);
  assert.equal(u.pathname, '/ws');
  assert.equal(u.searchParams.get('client_id'), client.clientId);
  assert.equal(client.connected, false);
  WS.last.open();
  assert.equal(client.connected, true);
  assert.deepEqual(events, ['connected']);
  assert.deepEqual(WS.last.messages(), [
    { type: 'subscribe', data: { subscription_id: id, resource_types: ['Observation'], patient_ids: ['patient-123'] } },
  ]);
  client.unsubscribe(id);
  assert.deepEqual(WS.last.messages().at(-1), { type: 'unsubscribe', data: { subscription_id: id } });
});

test('updates are decoded, emitted, and routed to matching subscriptions only', () => {
  const { WS, client } = setup();
  const all = [];
  const obs = [];
  const pat = [];
  client.on('update', (u) => all.push(u));
  client.subscribe({ resourceTypes: ['Observation'], onUpdate: (u) => obs.push(u.resourceId) });
  client.subscribe({ patientIds: ['p2'], onUpdate: (u) => pat.push(u.resourceId) });
  WS.last.open();
  WS.last.receive(update(1, 'Observation', 'o1', 'p1'));
  WS.last.receive(update(2, 'Condition', 'c1', 'p2'));
  WS.last.receive(update(3, 'Observation', 'o2', 'p2', 'deleted'));
  assert.deepEqual(all.map((u) => [u.seq, u.action, u.resourceType, u.resourceId, u.patientId]), [
    [1, 'created', 'Observation', 'o1', 'p1'],
    [2, 'created', 'Condition', 'c1', 'p2'],
    [3, 'deleted', 'Observation', 'o2', 'p2'],
  ]);
  assert.equal(all[2].resource, null);
  assert.deepEqual(obs, ['o1', 'o2']);
  assert.deepEqual(pat, ['c1', 'o2']);
});

test('clinical events and server errors are emitted', () => {
  const { WS, client } = setup();
  const got = [];
  client.on('clinical_event', (e) => got.push(['event', e.eventType, e.details.resource_id, e.seq]));
  client.on('error', (e) => got.push(['error', e.code, e.message]));
  client.connect();
  WS.last.open();
  WS.last.receive({ type: 'clinical_event', seq: 7, data: { event_type: 'critical_result', details: { resource_type: 'Observation', resource_id: 'o9', patient_id: 'p1' } } });
  WS.last.receive({ type: 'error', data: { code: 'bad_request', message: 'unknown type' } });
  WS.last.receive('not json');
  assert.deepEqual(got, [
    ['event', 'critical_result', 'o9', 7],
    ['error', 'bad_request', 'unknown type'],
    ['error', 'parse', 'server sent a message that is not JSON'],
  ]);
});

test('reconnects with capped exponential backoff', () => {
  const { clock, WS, client } = setup({ random: () => 0 }); // no jitter taken off
  const seen = [];
  client.on('disconnected', (e) => seen.push(e.willReconnect));
  client.connect();
  WS.last.open();
  WS.last.drop();
  assert.deepEqual(seen, [true]);
  const delays = [];
  for (let i = 0; i < 10; i++) {
    const n = WS.instances.length;
    const [d] = clock.pending();
    delays.push(d);
    clock.advance(d - 1);
    assert.equal(WS.instances.length, n, `attempt ${i} fired early`);
    clock.advance(1);
    assert.equal(WS.instances.length, n + 1, `attempt ${i} did not fire`);
    WS.last.drop(); // connection refused
  }
  assert.deepEqual(delays, [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000]);
  // A successful open resets the backoff.
  clock.advance(clock.pending()[0]);
  WS.last.open();
  WS.last.drop();
  assert.deepEqual(clock.pending(), [500]);
});

test('jitter keeps delays within [d*(1-jitter), d]', () => {
  for (const r of [0, 0.25, 0.5, 0.999999]) {
    const { client } = setup({ random: () => r });
    for (let n = 0; n < 12; n++) {
      const base = Math.min(30000, 500 * 2 ** n);
      const d = client.nextDelay(n);
      assert.ok(d >= base * 0.5 && d <= base, `n=${n} r=${r}: ${d} not in [${base / 2}, ${base}]`);
    }
  }
  let i = 0;
  const seq = [0.1, 0.9];
  const { client } = setup({ random: () => seq[i++ % 2] });
  client.random = () => seq[i++ % 2];
  const a = client.nextDelay(3);
  const b = client.nextDelay(3);
  assert.notEqual(a, b, 'jitter must vary the delay');
});

test('queues messages while disconnected and flushes them in order after resubscribing', () => {
  const { clock, WS, client } = setup();
  client.connect();
  client.send({ type: 'ping' });
  client.send({ type: 'custom', data: { n: 1 } });
  const id = client.subscribe({ resourceTypes: ['Task'] });
  assert.equal(WS.instances.length, 1, 'one socket while connecting');
  WS.last.open();
  assert.deepEqual(WS.last.messages().map((m) => m.type), ['subscribe', 'ping', 'custom']);
  assert.equal(WS.last.messages()[0].data.subscription_id, id);
  WS.last.drop();
  client.send({ type: 'custom', data: { n: 2 } });
  clock.advance(clock.pending()[0]);
  WS.last.open();
  assert.deepEqual(WS.last.messages().map((m) => m.type), ['subscribe', 'custom']);
  assert.equal(WS.last.messages()[1].data.n, 2);
});

test('the offline queue is bounded', () => {
  const { WS, client } = setup({ client: { maxQueue: 3 } });
  for (let n = 0; n < 10; n++) client.send({ type: 'custom', data: { n } });
  WS.last.open();
  assert.deepEqual(WS.last.messages().map((m) => m.data.n), [7, 8, 9]);
});

test('restores subscriptions after reconnect, then resumes from the last seq', () => {
  const { clock, WS, client } = setup();
  const a = client.subscribe({ resourceTypes: ['Observation'], patientIds: ['p1'] });
  const b = client.subscribe({ resourceTypes: ['*'] });
  WS.last.open();
  assert.equal(WS.last.messages().some((m) => m.type === 'resume'), false, 'no resume on a fresh client');
  WS.last.receive(update(41, 'Observation', 'o1', 'p1'));
  WS.last.receive(update(42, 'Observation', 'o2', 'p1'));
  client.unsubscribe(b);
  WS.last.drop();
  clock.advance(clock.pending()[0]);
  WS.last.open();
  assert.deepEqual(WS.last.messages(), [
    { type: 'subscribe', data: { subscription_id: a, resource_types: ['Observation'], patient_ids: ['p1'] } },
    { type: 'resume', data: { since: 42 } },
  ]);
});

test('replayed duplicates are dropped by seq, out-of-order replays are kept', () => {
  const { clock, WS, client } = setup();
  const got = [];
  client.on('update', (u) => got.push(u.seq));
  client.subscribe();
  WS.last.open();
  WS.last.receive(update(1, 'Observation', 'o1', 'p1'));
  WS.last.receive(update(2, 'Observation', 'o2', 'p1'));
  WS.last.drop();
  clock.advance(clock.pending()[0]);
  WS.last.open();
  // The server replays by client_id and again for resume; a live message
  // may arrive between replayed ones.
  for (const s of [1, 2, 5, 3, 4, 3, 4, 5, 2]) WS.last.receive(update(s, 'Observation', `o${s}`, 'p1'));
  assert.deepEqual(got, [1, 2, 5, 3, 4]);
  assert.equal(client.lastSeq, 5);
});

test('control messages carrying the server head do not hide replayed updates', () => {
  const { clock, WS, client } = setup();
  const got = [];
  client.on('update', (u) => got.push(u.seq));
  client.on('clinical_event', (e) => got.push(`${e.eventType}@${e.seq}`));
  client.subscribe();
  WS.last.open();
  WS.last.receive({ type: 'subscribed', seq: 0, data: { subscription_id: 'x' } });
  WS.last.receive(update(10, 'Observation', 'o10', 'p1'));
  WS.last.drop();
  clock.advance(clock.pending()[0]);
  WS.last.open();
  // After a restart the server acknowledges with its head (12), then replays.
  WS.last.receive({ type: 'subscribed', seq: 12, data: { subscription_id: 'x' } });
  assert.equal(client.lastSeq, 10, 'a control message must not move the resume point');
  WS.last.receive(update(11, 'Observation', 'o11', 'p1'));
  WS.last.receive(update(12, 'Observation', 'o12', 'p1'));
  // One change can yield an update and clinical events with the same seq.
  WS.last.receive({ type: 'clinical_event', seq: 12, data: { event_type: 'critical_result', details: { resource_id: 'o12' } } });
  WS.last.receive({ type: 'clinical_event', seq: 12, data: { event_type: 'result_available', details: { resource_id: 'o12' } } });
  WS.last.receive({ type: 'clinical_event', seq: 12, data: { event_type: 'critical_result', details: { resource_id: 'o12' } } });
  WS.last.receive({ type: 'resumed', seq: 12, data: { since: 10 } });
  assert.deepEqual(got, [10, 11, 12, 'critical_result@12', 'result_available@12']);
  assert.equal(client.lastSeq, 12);
});

test('the dedup window is bounded and older seqs stay dropped', () => {
  const { WS, client } = setup({ client: { dedupWindow: 4 } });
  const got = [];
  client.on('update', (u) => got.push(u.seq));
  client.connect();
  WS.last.open();
  for (let s = 1; s <= 10; s++) WS.last.receive(update(s, 'Observation', `o${s}`, 'p1'));
  assert.equal(client.seen.size, 4);
  WS.last.receive(update(3, 'Observation', 'o3', 'p1'));
  WS.last.receive(update(10, 'Observation', 'o10', 'p1'));
  WS.last.receive(update(11, 'Observation', 'o11', 'p1'));
  assert.deepEqual(got, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
});

test('client_id and last seq survive a page reload through storage', () => {
  const storage = memoryStorage();
  const first = setup({ storage });
  first.client.subscribe();
  first.WS.last.open();
  first.WS.last.receive(update(17, 'Patient', 'p1', 'p1'));
  first.client.close();

  const second = setup({ storage });
  assert.equal(second.client.clientId, first.client.clientId);
  second.client.subscribe({ resourceTypes: ['Patient'] });
  second.WS.last.open();
  assert.equal(new URL(second.WS.last.url).searchParams.get('client_id'), first.client.clientId);
  assert.deepEqual(second.WS.last.messages().at(-1), { type: 'resume', data: { since: 17 } });

  const other = setup({ storage: memoryStorage(), random: () => 0.9 });
  assert.notEqual(other.client.clientId, first.client.clientId);
});

test('heartbeat: ping after idle, reconnect when no pong arrives', () => {
  const { clock, WS, client } = setup({ client: { heartbeatInterval: 1000, heartbeatTimeout: 300 } });
  const errors = [];
  client.on('error', (e) => errors.push(e.code));
  client.subscribe();
  const first = WS.last;
  first.open();
  clock.advance(999);
  assert.equal(first.messages().filter((m) => m.type === 'ping').length, 0);
  clock.advance(1);
  assert.equal(first.messages().filter((m) => m.type === 'ping').length, 1);
  first.receive({ type: 'pong' });
  clock.advance(1000); // idle again: second ping
  assert.equal(first.messages().filter((m) => m.type === 'ping').length, 2);
  clock.advance(299);
  assert.equal(client.connected, true);
  clock.advance(1); // no pong within the timeout
  assert.equal(client.connected, false);
  assert.equal(first.closedByClient, true);
  assert.deepEqual(errors, ['heartbeat']);
  clock.advance(clock.pending()[0]);
  assert.equal(WS.instances.length, 2, 'reconnected');
  WS.last.open();
  assert.equal(WS.last.messages()[0].type, 'subscribe');
  // Late events from the abandoned socket are ignored.
  const got = [];
  client.on('update', (u) => got.push(u.seq));
  first.receive(update(99, 'Observation', 'o', 'p'));
  first.drop();
  assert.deepEqual(got, []);
  assert.equal(client.connected, true);
});

test('any message counts as liveness', () => {
  const { clock, WS, client } = setup({ client: { heartbeatInterval: 1000, heartbeatTimeout: 300 } });
  client.connect();
  WS.last.open();
  for (let i = 0; i < 10; i++) {
    clock.advance(900);
    WS.last.receive(update(i + 1, 'Observation', 'o', 'p'));
  }
  assert.equal(WS.last.messages().filter((m) => m.type === 'ping').length, 0);
  assert.equal(client.connected, true);
});

test('close stops reconnecting', () => {
  const { clock, WS, client } = setup();
  client.connect();
  WS.last.open();
  const states = [];
  client.on('disconnected', (e) => states.push(e.willReconnect));
  client.close();
  assert.deepEqual(states, [false]);
  clock.advance(120000);
  assert.equal(WS.instances.length, 1);
  client.subscribe();
  assert.equal(WS.instances.length, 1);
});

test('getClient is a singleton per server URL', () => {
  const WS = makeFakeWebSocket();
  const opts = { WebSocket: WS, storage: memoryStorage(), timers: new FakeClock() };
  try {
    const a = getClient('http://a.test:8080', opts);
    assert.equal(getClient('http://a.test:8080/', opts), a);
    assert.equal(getClient('ws://a.test:8080/ws', opts), a);
    const b = getClient('http://b.test:8080', opts);
    assert.notEqual(a, b);
    globalThis.location = { protocol: 'http:', host: 'a.test:8080' };
    assert.equal(getClient(undefined, opts), a, 'page host resolves to the same client');
    a.close();
    assert.notEqual(getClient('http://a.test:8080', opts), a, 'a closed client is replaced');
  } finally {
    delete globalThis.location;
    closeAllClients();
  }
});

test('listener errors are reported, not thrown into the socket', () => {
  const { WS, client } = setup();
  const errors = [];
  client.on('error', (e) => errors.push(e.message));
  client.on('update', () => {
    throw new Error('boom');
  });
  client.subscribe();
  WS.last.open();
  WS.last.receive(update(1, 'Observation', 'o', 'p'));
  assert.deepEqual(errors, ['boom']);
  assert.throws(() => client.on('nope', () => {}), /unknown event/);
  assert.throws(() => client.subscribe({ resourceTypes: 'Observation' }), /must be arrays/);
});

test('matchesFilter', () => {
  assert.equal(matchesFilter({}, { resourceType: 'X', patientId: null }), true);
  assert.equal(matchesFilter({ resourceTypes: [] }, { resourceType: 'X', patientId: null }), true);
  assert.equal(matchesFilter({ resourceTypes: ['Y'] }, { resourceType: 'X', patientId: null }), false);
  assert.equal(matchesFilter({ patientIds: ['Patient/1'] }, { resourceType: 'X', patientId: '1' }), true);
  assert.equal(matchesFilter({ patientIds: ['1'] }, { resourceType: 'X', patientId: null }), false);
});

test('bindSubscription fetches a token, binds, and forwards bundles', async () => {
  const clock = new FakeClock();
  const WS = makeFakeWebSocket();
  const calls = [];
  const fetch = async (url, init) => {
    calls.push([init.method, url]);
    return {
      ok: true,
      status: 200,
      json: async () => ({
        resourceType: 'Parameters',
        parameter: [
          { name: 'token', valueString: 'tok-1' },
          { name: 'expiration', valueDateTime: '2030-01-01T00:00:00Z' },
          { name: 'websocket-url', valueUrl: 'ws://fhir.test:8080/ws/subscriptions' },
        ],
      }),
    };
  };
  const client = new Client({ url: 'http://fhir.test:8080', WebSocket: WS, timers: clock, storage: memoryStorage(), fetch });
  const bundles = [];
  const h = client.bindSubscription('s1', { onBundle: (b) => bundles.push(b.type) });
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(calls, [['POST', 'http://fhir.test:8080/Subscription/s1/$get-ws-binding-token']]);
  assert.equal(WS.last.url, 'ws://fhir.test:8080/ws/subscriptions');
  WS.last.open();
  assert.deepEqual(WS.last.sent, ['bind-with-token tok-1']);
  WS.last.receive({ resourceType: 'Bundle', type: 'history' });
  assert.deepEqual(bundles, ['history']);
  h.close();
  assert.equal(WS.last.closedByClient, true);
});

test('bindSubscription reports the OperationOutcome of a refusal', async () => {
  const fetch = async () => ({
    ok: false,
    status: 404,
    json: async () => ({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'not-found', diagnostics: 'Subscription/s9 is not known' }] }),
  });
  const clock = new FakeClock();
  const client = new Client({ url: 'http://fhir.test', WebSocket: makeFakeWebSocket(), timers: clock, storage: memoryStorage(), fetch });
  const errs = [];
  const h = client.bindSubscription('s9', { onError: (e) => errs.push(e.message) });
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(errs, ['Subscription/s9 is not known']);
  assert.equal(clock.pending().length, 1, 'a retry is scheduled');
  h.close();
  assert.equal(clock.pending().length, 0);
});
