// @fhirsub/client entry point: the live-channel client. React hooks are in
// "@fhirsub/client/react" (hooks.js) so that this module needs no React.
export {
  Client,
  EVENTS,
  getClient,
  closeAllClients,
  endpointFor,
  httpBaseFor,
  matchesFilter,
  memoryStorage,
  parameters,
  outcomeMessage,
} from './client.js';
