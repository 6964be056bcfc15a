// The broker's own typed errors. A protocol violation ends only the offending runner's stream.
import { Code } from "@connectrpc/connect";
import { DomainError } from "@corral/server-kit";

/** The runner broke the stream protocol (a result for a lease it does not hold, a second Hello, ...). */
export class ProtocolViolationError extends DomainError {
  constructor(code: Code, message: string) {
    super(code, message);
    this.name = "ProtocolViolationError";
  }
}

/** Results are pending and none reached job-service for longer than the stall timeout (readiness). */
export class ResultsStalledError extends DomainError {
  constructor(stallTimeoutMs: number) {
    super(Code.Unavailable, `task results have not been delivered to job-service for over ${stallTimeoutMs} ms`);
    this.name = "ResultsStalledError";
  }
}

/** The broker is stopping and takes no new sessions. */
export class BrokerDrainingError extends DomainError {
  constructor() {
    super(Code.Unavailable, "the broker is draining: connect to another replica");
    this.name = "BrokerDrainingError";
  }
}
