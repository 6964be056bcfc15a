// A session's credit: how many assignments its runner still accepts (granted by Credit, spent by
// each Assign) and how many of those the dispatcher has promised to entries being claimed right
// now. Only this class changes the two numbers; everyone else asks it.
export interface CreditView {
  /** Credit the runner granted and no Assign has spent yet. */
  readonly open: number;
  /** Open credit promised to entries being claimed right now. */
  readonly reserved: number;
}

/** The most open credit a runner may hold: twice its slots, and never above 10,000. */
export function maxCreditFor(slots: number): number {
  return Math.min(slots * 2, 10_000);
}

export class CreditAccount implements CreditView {
  #open: number;
  #reserved = 0;
  readonly max: number;

  constructor(slots: number) {
    this.#open = slots;
    this.max = maxCreditFor(slots);
  }

  get open(): number {
    return this.#open;
  }

  get reserved(): number {
    return this.#reserved;
  }

  /** Credit that may be promised now (none while the session does not take work). */
  available(takesWork: boolean): number {
    return takesWork ? Math.max(0, this.#open - this.#reserved) : 0;
  }

  /** The runner's Credit message; the protocol checked it against `max` first. */
  grant(n: number): void {
    this.#open += n;
  }

  /** Hello's credit: the slots that resumed leases do not fill. */
  openWith(slots: number, held: number): void {
    this.#open = Math.max(0, slots - held);
  }

  /** An Assign went out. */
  spend(): void {
    this.#open = Math.max(0, this.#open - 1);
  }

  reserve(): void {
    this.#reserved++;
  }

  unreserve(): void {
    this.#reserved--;
  }
}
