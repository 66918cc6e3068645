// React hooks over the shared live-channel client. React is a peer
// dependency, imported only here.
import { useEffect, useRef, useState } from 'react';
import { getClient } from './client.js';

function useClient(options) {
  return options.client ?? getClient(options.url, options.clientOptions);
}

function useConnected(client) {
  const [connected, setConnected] = useState(client.connected);
  useEffect(() => {
    setConnected(client.connected);
    const offs = [client.on('connected', () => setConnected(true)), client.on('disconnected', () => setConnected(false))];
    return () => offs.forEach((off) => off());
  }, [client]);
  return connected;
}

function toLastUpdate(u) {
  return { action: u.action, resourceType: u.resourceType, resourceId: u.resourceId, patientId: u.patientId, resource: u.resource };
}

/**
 * useWebSocket subscribes to updates matching resourceTypes/patientIds while
 * enabled and returns {connected, lastUpdate}.
 */
export function useWebSocket(options = {}) {
  const { resourceTypes = ['*'], patientIds = [], enabled = true } = options;
  const client = useClient(options);
  const connected = useConnected(client);
  const [lastUpdate, setLastUpdate] = useState(null);
  const key = JSON.stringify([resourceTypes, patientIds]);
  useEffect(() => {
    if (!enabled) return undefined;
    const [types, patients] = JSON.parse(key);
    const id = client.subscribe({ resourceTypes: types, patientIds: patients, onUpdate: (u) => setLastUpdate(toLastUpdate(u)) });
    return () => client.unsubscribe(id);
  }, [client, key, enabled]);
  return { connected, lastUpdate };
}

/**
 * usePatientUpdates follows one patient's resources (all types unless
 * resourceTypes is given). It returns {connected, lastUpdate, updates}, the
 * latter the most recent updates first (at most options.limit, default 50).
 */
export function usePatientUpdates(patientId, resourceTypes = ['*'], options = {}) {
  const limit = options.limit ?? 50;
  const client = useClient(options);
  const connected = useConnected(client);
  const [state, setState] = useState({ lastUpdate: null, updates: [] });
  const key = JSON.stringify(resourceTypes);
  useEffect(() => {
    setState({ lastUpdate: null, updates: [] });
    if (!patientId) return undefined;
    const id = client.subscribe({
      resourceTypes: JSON.parse(key),
      patientIds: [patientId],
      onUpdate: (u) => setState((s) => ({ lastUpdate: toLastUpdate(u), updates: [toLastUpdate(u), ...s.updates].slice(0, limit) })),
    });
    return () => client.unsubscribe(id);
  }, [client, patientId, key, limit]);
  return { connected, ...state };
}

/**
 * useClinicalEvents calls callback for every clinical event of eventType
 * ('*' or null for all) with {eventType, details, seq, timestamp}. The latest
 * callback is always used without resubscribing. Returns {connected}.
 */
export function useClinicalEvents(eventType, callback, options = {}) {
  const client = useClient(options);
  const connected = useConnected(client);
  const cb = useRef(callback);
  cb.current = callback;
  const patients = JSON.stringify(options.patientIds ?? []);
  useEffect(() => {
    const id = client.subscribe({ resourceTypes: ['*'], patientIds: JSON.parse(patients) });
    const off = client.on('clinical_event', (ev) => {
      if (!eventType || eventType === '*' || ev.eventType === eventType) cb.current?.(ev);
    });
    return () => {
      off();
      client.unsubscribe(id);
    };
  }, [client, eventType, patients]);
  return { connected };
}
