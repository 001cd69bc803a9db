/**
 * rx-rudp/cluster: one UDP port served by several worker processes, one listener each, so a
 * server uses every core. The primary calls listenCluster(); each worker calls clusterWorker().
 */
export { listenCluster, type Cluster, type ClusterOptions, type ClusterStats, type ClusterWorker, type WorkerExit, type WorkerStats } from './primary';
export { clusterWorker, clusterWorkerIndex, isClusterWorker, type ClusterWorkerOptions } from './worker';
export { ClusterError } from './errors';
export { ReusePortUnsupportedError } from '../node/reuse-port';
