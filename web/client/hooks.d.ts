// Type declarations for @fhirsub/client/react.
import type { Client, ClientOptions, ClinicalEvent, Resource } from './index.js';

export interface LastUpdate {
  action: 'created' | 'updated' | 'deleted';
  resourceType: string;
  resourceId: string;
  patientId: string | null;
  resource: Resource | null;
}

export interface HookOptions {
  /** A client to use instead of getClient(url). */
  client?: Client;
  /** Server URL; the page's host by default. */
  url?: string;
  clientOptions?: ClientOptions;
}

export declare function useWebSocket(
  options?: HookOptions & { resourceTypes?: string[]; patientIds?: string[]; enabled?: boolean },
): { connected: boolean; lastUpdate: LastUpdate | null };

export declare function usePatientUpdates(
  patientId: string | null | undefined,
  resourceTypes?: string[],
  options?: HookOptions & { limit?: number },
): { connected: boolean; lastUpdate: LastUpdate | null; updates: LastUpdate[] };

export declare function useClinicalEvents(
  eventType: string | null,
  callback: (event: ClinicalEvent) => void,
  options?: HookOptions & { patientIds?: string[] },
): { connected: boolean };
