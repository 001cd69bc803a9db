import type { EndpointStats } from '../core/endpoint';
import type { SocketAddress } from '../core/transport';

/**
 * What the primary and its worker processes say to each other over the IPC channel, and the
 * environment variable that tells a worker its place. Plain JSON: both sides may be different
 * builds of the library (the primary a bundle, the worker dist/), so nothing else crosses.
 */

/** Set in each worker's environment: JSON of WorkerRole. */
export const WORKER_ROLE_ENV = 'RX_RUDP_CLUSTER_WORKER';

/** Where a worker binds: the primary chose the port (the first worker's, when 0 was asked). */
export interface WorkerRole {
  readonly index: number;
  readonly host: string;
  readonly port: number;
}

/** One worker's figures, as it reports them. */
export interface WorkerReport {
  readonly endpoint: EndpointStats;
  /** Connections open now. */
  readonly connections: number;
  /** Connections accepted since the worker started. */
  readonly accepted: number;
  /** process.cpuUsage() of the worker, in microseconds. */
  readonly cpuUser: number;
  readonly cpuSystem: number;
  readonly rssBytes: number;
}

export type ToWorker = { readonly type: 'rx-rudp:stop' } | { readonly type: 'rx-rudp:stats'; readonly id: number };

export type FromWorker =
  | { readonly type: 'rx-rudp:listening'; readonly address: SocketAddress }
  | { readonly type: 'rx-rudp:failed'; readonly name: string; readonly message: string }
  | { readonly type: 'rx-rudp:stats'; readonly id: number; readonly report: WorkerReport };

export function isFromWorker(value: unknown): value is FromWorker {
  const type = (value as { type?: unknown } | null)?.type;
  return type === 'rx-rudp:listening' || type === 'rx-rudp:failed' || type === 'rx-rudp:stats';
}

export function isToWorker(value: unknown): value is ToWorker {
  const type = (value as { type?: unknown } | null)?.type;
  return type === 'rx-rudp:stop' || type === 'rx-rudp:stats';
}
