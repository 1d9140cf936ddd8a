/** Prometheus metrics and the HTTP endpoints for them and for probes. Imports nothing of ours. */
export * from './adapters.ts';
export * from './metrics.ts';
export * from './placement.ts';
export * from './server.ts';
