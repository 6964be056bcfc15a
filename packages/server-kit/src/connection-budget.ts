// How many connections a process holds, in all and per client address: the pure bookkeeping behind
// the front socket's admission (connection-guard.ts), so one address or a flood of idle sockets
// cannot take every file descriptor the process has.

export interface ConnectionBudgetLimits {
  /** Connections the process holds at most. */
  max: number;
  /** Connections one client address holds at most (loopback counts like any address). */
  perAddress: number;
}

export type Admission = "admit" | "address-full" | "process-full";

export interface ConnectionBudget {
  /** Takes a place for a new connection from `address`, or says why there is none. */
  admit(address: string): Admission;
  /** Gives back the place of a connection admitted from `address`. */
  release(address: string): void;
  readonly open: number;
  openFrom(address: string): number;
}

/** The per-address share when none is configured: a quarter of the cap, and at most 2,000. */
export function defaultPerAddress(max: number): number {
  return Math.max(1, Math.min(Math.floor(max / 4), 2_000));
}

export function createConnectionBudget(limits: ConnectionBudgetLimits): ConnectionBudget {
  const byAddress = new Map<string, number>();
  let open = 0;
  return {
    admit(address) {
      const held = byAddress.get(address) ?? 0;
      if (held >= limits.perAddress) return "address-full";
      if (open >= limits.max) return "process-full";
      byAddress.set(address, held + 1);
      open++;
      return "admit";
    },
    release(address) {
      const held = byAddress.get(address);
      if (held === undefined) return;
      if (held <= 1) byAddress.delete(address);
      else byAddress.set(address, held - 1);
      open--;
    },
    get open() {
      return open;
    },
    openFrom(address) {
      return byAddress.get(address) ?? 0;
    },
  };
}
