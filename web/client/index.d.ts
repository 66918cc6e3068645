// Type declarations for @fhirsub/client (the live-channel client).

/** A FHIR resource as JSON. */
export type Resource = { resourceType: string; id?: string; [key: string]: unknown };

/** An update as delivered to listeners: one stored change. */
export interface Update {
  action: 'created' | 'updated' | 'deleted';
  resourceType: string;
  resourceId: string;
  patientId: string | null;
  /** The resource after the change; null for deletions. */
  resource: Resource | null;
  seq: number | null;
  timestamp: string | null;
}

export type ClinicalEventType =
  | 'critical_result'
  | 'new_order'
  | 'result_available'
  | 'order_status_change'
  | 'task'
  | 'communication';

export interface ClinicalEvent {
  eventType: ClinicalEventType | string;
  details: { resource_type?: string; resource_id?: string; patient_id?: string; [key: string]: unknown };
  seq: number | null;
  timestamp: string | null;
}

export interface ClientError {
  code: string;
  message: string;
}

export interface EventMap {
  update: Update;
  clinical_event: ClinicalEvent;
  connected: { clientId: string; lastSeq: number };
  disconnected: { willReconnect: boolean };
  error: ClientError;
  /** Every decoded, de-duplicated server message. */
  message: { type: string; seq?: number; data?: unknown; timestamp?: string };
}

export interface Filter {
  /** Resource types; ['*'] (the default) means all. */
  resourceTypes?: string[];
  /** Patient ids ("123" or "Patient/123"); [] (the default) means all. */
  patientIds?: string[];
}

export interface SubscribeOptions extends Filter {
  /** Receives only the updates matching this filter. */
  onUpdate?: (u: Update) => void;
}

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface StorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

export interface ClientOptions {
  /** Bearer token, sent as the access_token query parameter. */
  accessToken?: string;
  WebSocket?: new (url: string) => WebSocket;
  timers?: Timers;
  random?: () => number;
  storage?: StorageLike;
  fetch?: typeof fetch;
  location?: { protocol: string; host: string };
  /** First reconnect delay in ms (500). */
  initialDelay?: number;
  /** Reconnect delay cap in ms (30000). */
  maxDelay?: number;
  /** Fraction of a delay removed at random, 0..1 (0.5). */
  jitter?: number;
  /** Idle time before a ping, ms (25000). */
  heartbeatInterval?: number;
  /** Time to wait for the pong before reconnecting, ms (10000). */
  heartbeatTimeout?: number;
  /** Outgoing messages kept while disconnected (1000). */
  maxQueue?: number;
  /** Recent seqs remembered for de-duplication (4096). */
  dedupWindow?: number;
}

export interface BindOptions {
  onBundle?: (bundle: Resource) => void;
  onError?: (err: ClientError) => void;
  /** FHIR base URL; derived from the client's URL by default. */
  baseURL?: string;
}

export declare const EVENTS: ReadonlyArray<keyof EventMap>;

export declare class Client {
  constructor(opts: ClientOptions & { url: string });
  readonly url: string;
  readonly clientId: string;
  readonly connected: boolean;
  /** Highest seq received; persisted with the client id. */
  readonly lastSeq: number;
  connect(): void;
  subscribe(opts?: SubscribeOptions): string;
  unsubscribe(id: string): void;
  /** Sends a protocol message; queued while disconnected. */
  send(msg: { type: string; data?: unknown }): void;
  on<E extends keyof EventMap>(event: E, fn: (payload: EventMap[E]) => void): () => void;
  /** Delay before reconnect attempt n (0-based), ms. */
  nextDelay(n: number): number;
  socketURL(): string;
  close(): void;
  /** Binds a websocket-channel Subscription through $get-ws-binding-token. */
  bindSubscription(id: string, opts?: BindOptions): { close(): void };
}

/** The shared client for a server (page host when url is omitted). */
export declare function getClient(url?: string, options?: ClientOptions): Client;
export declare function closeAllClients(): void;
export declare function endpointFor(url: string | undefined, loc?: { protocol: string; host: string }): string;
export declare function httpBaseFor(endpoint: string): string;
export declare function matchesFilter(filter: Filter, update: Pick<Update, 'resourceType' | 'patientId'>): boolean;
export declare function memoryStorage(): StorageLike;
export declare function parameters(p: Resource | null | undefined): Record<string, unknown>;
export declare function outcomeMessage(body: unknown): string | null;
