import { RudpError } from '../core/errors';

/**
 * A cluster could not start, or lost its last worker; or clusterWorker() was called outside a
 * worker. `workerIndex` says which worker, when one is to blame.
 */
export class ClusterError extends RudpError {
  override name = 'ClusterError';
  constructor(message: string, readonly workerIndex?: number, options?: ErrorOptions) {
    super(message, options);
  }
}
