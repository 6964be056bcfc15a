// Placement, the pure core of provisioning: cluster specs, hosts with their capacity and the runners
// already placed in, launches and stops out, with a reason a person can act on for every cluster
// that gets fewer runners than it asks for. No I/O: the reconciler reads the world, calls this,
// and writes what it returns.

/** What a host offers, or what one runner needs. */
export interface Resources {
  cpuCores: number;
  memoryBytes: bigint;
  gpuCount: number;
  /** Empty: any type (a need), or none named (a host). */
  gpuType: string;
}

export interface HostView {
  id: string;
  name: string;
  /** Null: the host has no location and only serves clusters without one. */
  locationId: string | null;
  capacity: Resources;
  /** Accepts new runners (its agent's stream is open and it is not draining). */
  accepting: boolean;
}

export interface ClusterView {
  id: string;
  /** Null: any host will do. */
  locationId: string | null;
  /** How the reason names the location ("us-west"). */
  locationName: string;
  /** Runners it should have now (0 while stopped). */
  desired: number;
  need: Resources;
}

export interface PlacedRunner {
  runnerId: string;
  clusterId: string;
  hostId: string;
  need: Resources;
  /** Told to stop: still holds its capacity until its agent says it stopped. */
  stopping: boolean;
}

export interface Launch {
  clusterId: string;
  hostId: string;
  need: Resources;
}

export interface ClusterOutcome {
  /** Runners placed (not stopping) after this pass's launches. */
  placed: number;
  /** Set when fewer than desired could be placed. */
  reason: string;
}

export interface PlacementPlan {
  launches: Launch[];
  /** Runner ids to stop: surplus, or placed on a host that is gone. */
  stops: string[];
  outcomes: Map<string, ClusterOutcome>;
}

const GIB = 1024n ** 3n;

function zero(): Resources {
  return { cpuCores: 0, memoryBytes: 0n, gpuCount: 0, gpuType: "" };
}

function gpuTypeFits(host: HostView, need: Resources): boolean {
  return need.gpuCount === 0 || need.gpuType === "" || host.capacity.gpuType === need.gpuType;
}

function fits(free: Resources, host: HostView, need: Resources): boolean {
  return (
    free.cpuCores >= need.cpuCores &&
    free.memoryBytes >= need.memoryBytes &&
    free.gpuCount >= need.gpuCount &&
    gpuTypeFits(host, need)
  );
}

function plural(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}

function formatMemory(bytes: bigint): string {
  if (bytes % GIB === 0n) return `${bytes / GIB} GiB`;
  return `${(Number(bytes) / Number(GIB)).toFixed(1)} GiB`;
}

/** "no host in us-west has 2 free nvidia-a100 GPUs": names the resource no candidate host has enough of. */
function shortfall(cluster: ClusterView, candidates: HostView[], free: Map<string, Resources>): string {
  const where = cluster.locationId === null ? "" : ` in ${cluster.locationName}`;
  if (candidates.length === 0) return `no online host${where}`;
  const need = cluster.need;
  const all = (ok: (h: HostView, f: Resources) => boolean) => candidates.some((h) => ok(h, free.get(h.id)!));
  if (need.gpuCount > 0 && !all((h, f) => f.gpuCount >= need.gpuCount && gpuTypeFits(h, need))) {
    const kind = need.gpuType === "" ? "" : `${need.gpuType} `;
    return `no host${where} has ${plural(need.gpuCount, `free ${kind}GPU`, `free ${kind}GPUs`)}`;
  }
  if (!all((_h, f) => f.cpuCores >= need.cpuCores)) {
    return `no host${where} has ${plural(need.cpuCores, "free CPU", "free CPUs")}`;
  }
  if (!all((_h, f) => f.memoryBytes >= need.memoryBytes)) {
    return `no host${where} has ${formatMemory(need.memoryBytes)} of free memory`;
  }
  // Each resource fits somewhere, but never all on one host.
  return `no host${where} has ${need.cpuCores} CPUs, ${formatMemory(need.memoryBytes)}${need.gpuCount > 0 ? ` and ${plural(need.gpuCount, "GPU", "GPUs")}` : ""} free at once`;
}

/**
 * One placement pass. Every host's free capacity is its capacity less every runner placed on it
 * (stopping ones too: they still run). Clusters are served in the order given; each missing runner
 * goes to the accepting host in the cluster's location with room for it that holds the fewest of
 * the cluster's runners, then the least load (spread, so losing a host loses few runners of one
 * cluster); a runner needing no GPU goes to a GPU host only when no other fits. Surplus runners are
 * stopped from the hosts holding most of the cluster's runners.
 */
export function planPlacement(clusters: ClusterView[], hosts: HostView[], placed: PlacedRunner[]): PlacementPlan {
  const free = new Map<string, Resources>();
  const load = new Map<string, number>();
  for (const h of hosts) {
    free.set(h.id, { ...h.capacity });
    load.set(h.id, 0);
  }
  const stops: string[] = [];
  const byCluster = new Map<string, PlacedRunner[]>();
  for (const r of placed) {
    const f = free.get(r.hostId);
    if (!f) {
      // Its host is gone: the runner is replaced, and stopped should the host come back.
      if (!r.stopping) stops.push(r.runnerId);
      continue;
    }
    f.cpuCores -= r.need.cpuCores;
    f.memoryBytes -= r.need.memoryBytes;
    f.gpuCount -= r.need.gpuCount;
    load.set(r.hostId, load.get(r.hostId)! + 1);
    if (r.stopping) continue;
    const list = byCluster.get(r.clusterId) ?? [];
    list.push(r);
    byCluster.set(r.clusterId, list);
  }

  const launches: Launch[] = [];
  const outcomes = new Map<string, ClusterOutcome>();
  for (const cluster of clusters) {
    const mine = byCluster.get(cluster.id) ?? [];
    const perHost = new Map<string, number>();
    for (const r of mine) perHost.set(r.hostId, (perHost.get(r.hostId) ?? 0) + 1);

    if (mine.length > cluster.desired) {
      const surplus = [...mine].sort(
        (a, b) => perHost.get(b.hostId)! - perHost.get(a.hostId)! || load.get(b.hostId)! - load.get(a.hostId)! || (a.runnerId < b.runnerId ? 1 : -1),
      );
      for (const r of surplus.slice(0, mine.length - cluster.desired)) {
        stops.push(r.runnerId);
        perHost.set(r.hostId, perHost.get(r.hostId)! - 1);
      }
      outcomes.set(cluster.id, { placed: cluster.desired, reason: "" });
      continue;
    }

    const candidates = hosts.filter((h) => h.accepting && (cluster.locationId === null || h.locationId === cluster.locationId));
    let count = mine.length;
    let reason = "";
    while (count < cluster.desired) {
      let best: HostView | undefined;
      let bestKey: [number, number, number] | undefined;
      for (const h of candidates) {
        if (!fits(free.get(h.id)!, h, cluster.need)) continue;
        const key: [number, number, number] = [
          cluster.need.gpuCount === 0 && h.capacity.gpuCount > 0 ? 1 : 0,
          perHost.get(h.id) ?? 0,
          load.get(h.id)!,
        ];
        if (!bestKey || key[0] < bestKey[0] || (key[0] === bestKey[0] && (key[1] < bestKey[1] || (key[1] === bestKey[1] && key[2] < bestKey[2])))) {
          best = h;
          bestKey = key;
        }
      }
      if (!best) {
        reason = `${count} of ${cluster.desired} runners placed: ${shortfall(cluster, candidates, free)}`;
        break;
      }
      const f = free.get(best.id)!;
      f.cpuCores -= cluster.need.cpuCores;
      f.memoryBytes -= cluster.need.memoryBytes;
      f.gpuCount -= cluster.need.gpuCount;
      load.set(best.id, load.get(best.id)! + 1);
      perHost.set(best.id, (perHost.get(best.id) ?? 0) + 1);
      launches.push({ clusterId: cluster.id, hostId: best.id, need: cluster.need });
      count++;
    }
    outcomes.set(cluster.id, { placed: count, reason });
  }
  return { launches, stops, outcomes };
}

/** Capacity a host has left given what is placed on it. */
export function usedBy(placed: PlacedRunner[]): Map<string, Resources> {
  const used = new Map<string, Resources>();
  for (const r of placed) {
    const u = used.get(r.hostId) ?? zero();
    u.cpuCores += r.need.cpuCores;
    u.memoryBytes += r.need.memoryBytes;
    u.gpuCount += r.need.gpuCount;
    if (r.need.gpuType !== "") u.gpuType = r.need.gpuType;
    used.set(r.hostId, u);
  }
  return used;
}
