// @corral/task-broker: the dispatch plane (corral.broker.v1).
export { createBroker, type Broker, type BrokerOptions, type BrokerState } from "./broker.js";
export type { BrokerMetrics } from "./metrics.js";
export type { Ledger } from "./result-batcher.js";
export type { ClusterResolver } from "./session-hub.js";
export type { ClusterRef } from "./runner-session.js";
export type { PresenceReporter } from "./presence-publisher.js";
export { createClusterResolverClient, createLedgerClient, createPresenceClient } from "./clients.js";
export { createBrokerComponent, type BrokerComponent } from "./component.js";
export { canRun, parseVersion } from "./task-identifier.js";
