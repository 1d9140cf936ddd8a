/** Prometheus metrics and the HTTP endpoints for them and for probes. Of ours it imports only src/util and src/api's rule names. */
export * from './adapters.ts';
export * from './metrics.ts';
export * from './placement.ts';
export * from './server.ts';
