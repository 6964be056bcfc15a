// The routes a gateway serves, and which one takes a task: the same name and major version, and
// the closest minor at or above the task's (a runner registering v1.3 may take v1.0 to v1.3 tasks).
import { formatIdentifier, identifierMatches, parseVersion, type TaskIdentifierInit } from "../identifier.js";
import type { GatewayRoute } from "./route-call.js";

export class RouteTable {
  readonly routes: readonly GatewayRoute[];
  /** Compared to tell whether a refresh changed anything. */
  readonly fingerprint: string;

  constructor(routes: readonly GatewayRoute[]) {
    this.routes = [...routes].sort((a, b) => formatIdentifier(a).localeCompare(formatIdentifier(b)));
    this.fingerprint = JSON.stringify(this.routes);
  }

  /** What the gateway registers: one identifier per route. */
  identifiers(): TaskIdentifierInit[] {
    return this.routes.map((r) => ({ name: r.name, version: r.version }));
  }

  /** The route that executes a task of this identifier, or undefined. */
  resolve(task: TaskIdentifierInit): GatewayRoute | undefined {
    let best: GatewayRoute | undefined;
    for (const r of this.routes) {
      if (!identifierMatches(r, task)) continue;
      if (!best || parseVersion(r.version).minor < parseVersion(best.version).minor) best = r;
    }
    return best;
  }
}
