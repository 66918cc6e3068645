import { test } from 'node:test';
import assert from 'node:assert/strict';
import React from 'react';
import TestRenderer from 'react-test-renderer';
import { Client, memoryStorage } from '../index.js';
import { useWebSocket, usePatientUpdates, useClinicalEvents } from '../hooks.js';
import { FakeClock, makeFakeWebSocket, update } from './fakes.js';

const { act } = TestRenderer;
globalThis.IS_REACT_ACT_ENVIRONMENT = true;

function setup() {
  const WS = makeFakeWebSocket();
  const client = new Client({ url: 'http://fhir.test', WebSocket: WS, timers: new FakeClock(), storage: memoryStorage(), random: () => 0.5 });
  return { WS, client };
}

// Probe renders a hook and exposes its latest result.
function probe(useHook) {
  const out = { current: null, renders: 0 };
  function Probe(props) {
    out.current = useHook(props);
    out.renders++;
    return null;
  }
  return { out, Probe };
}

test('useWebSocket subscribes, reports connection and the last matching update', () => {
  const { WS, client } = setup();
  const { out, Probe } = probe((p) => useWebSocket({ client, resourceTypes: p.types, patientIds: ['p1'], enabled: p.enabled }));
  let r;
  act(() => {
    r = TestRenderer.create(React.createElement(Probe, { types: ['Observation'], enabled: true }));
  });
  assert.deepEqual(out.current, { connected: false, lastUpdate: null });
  act(() => WS.last.open());
  assert.equal(out.current.connected, true);
  const sub = WS.last.messages()[0];
  assert.equal(sub.type, 'subscribe');
  assert.deepEqual(sub.data.resource_types, ['Observation']);
  assert.deepEqual(sub.data.patient_ids, ['p1']);

  act(() => WS.last.receive(update(1, 'Condition', 'c1', 'p1'))); // filtered out
  assert.equal(out.current.lastUpdate, null);
  act(() => WS.last.receive(update(2, 'Observation', 'o1', 'p1')));
  assert.deepEqual(out.current.lastUpdate, {
    action: 'created',
    resourceType: 'Observation',
    resourceId: 'o1',
    patientId: 'p1',
    resource: { resourceType: 'Observation', id: 'o1' },
  });

  // A new filter replaces the subscription; re-rendering with equal arrays does not.
  const before = WS.last.messages().length;
  act(() => r.update(React.createElement(Probe, { types: ['Observation'], enabled: true })));
  assert.equal(WS.last.messages().length, before);
  act(() => r.update(React.createElement(Probe, { types: ['Condition'], enabled: true })));
  const tail = WS.last.messages().slice(before);
  assert.deepEqual(tail.map((m) => m.type), ['unsubscribe', 'subscribe']);
  assert.equal(tail[0].data.subscription_id, sub.data.subscription_id);
  assert.deepEqual(tail[1].data.resource_types, ['Condition']);

  act(() => r.update(React.createElement(Probe, { types: ['Condition'], enabled: false })));
  assert.equal(WS.last.messages().at(-1).type, 'unsubscribe');
  assert.equal(client.subs.size, 0);

  act(() => r.update(React.createElement(Probe, { types: ['Condition'], enabled: true })));
  act(() => WS.last.drop());
  assert.equal(out.current.connected, false);
  act(() => r.unmount());
  assert.equal(client.subs.size, 0, 'unmount unsubscribes');
  client.close();
});

test('usePatientUpdates follows one patient and keeps a bounded history', () => {
  const { WS, client } = setup();
  const { out, Probe } = probe((p) => usePatientUpdates(p.patient, ['Observation', 'MedicationRequest'], { client, limit: 2 }));
  let r;
  act(() => {
    r = TestRenderer.create(React.createElement(Probe, { patient: 'Patient/p7' }));
  });
  act(() => WS.last.open());
  assert.deepEqual(WS.last.messages()[0].data.patient_ids, ['p7']);
  act(() => {
    WS.last.receive(update(1, 'Observation', 'o1', 'p7'));
    WS.last.receive(update(2, 'Observation', 'o2', 'p8'));
    WS.last.receive(update(3, 'MedicationRequest', 'm1', 'p7'));
    WS.last.receive(update(4, 'Observation', 'o3', 'p7', 'updated'));
  });
  assert.deepEqual(out.current.updates.map((u) => u.resourceId), ['o3', 'm1']);
  assert.equal(out.current.lastUpdate.action, 'updated');

  act(() => r.update(React.createElement(Probe, { patient: null })));
  assert.deepEqual(out.current.updates, []);
  assert.equal(client.subs.size, 0, 'no patient, no subscription');
  act(() => r.unmount());
  client.close();
});

test('useClinicalEvents filters by type and always calls the latest callback', () => {
  const { WS, client } = setup();
  const calls = [];
  const { out, Probe } = probe((p) => useClinicalEvents('critical_result', (e) => calls.push([p.tag, e.details.resource_id]), { client }));
  let r;
  act(() => {
    r = TestRenderer.create(React.createElement(Probe, { tag: 'a' }));
  });
  act(() => WS.last.open());
  assert.equal(out.current.connected, true);
  const ev = (seq, type, id) => ({ type: 'clinical_event', seq, data: { event_type: type, details: { resource_type: 'Observation', resource_id: id } } });
  act(() => {
    WS.last.receive(ev(1, 'critical_result', 'o1'));
    WS.last.receive(ev(2, 'new_order', 'sr1'));
  });
  const subs = WS.last.messages().filter((m) => m.type === 'subscribe').length;
  act(() => r.update(React.createElement(Probe, { tag: 'b' })));
  assert.equal(WS.last.messages().filter((m) => m.type === 'subscribe').length, subs, 'a new callback does not resubscribe');
  act(() => WS.last.receive(ev(3, 'critical_result', 'o2')));
  assert.deepEqual(calls, [
    ['a', 'o1'],
    ['b', 'o2'],
  ]);
  act(() => r.unmount());
  act(() => WS.last.receive(ev(4, 'critical_result', 'o3')));
  assert.equal(calls.length, 2, 'no calls after unmount');
  client.close();
});
