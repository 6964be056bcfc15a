// Loads a job's whole task tree level by level (ListTasks answers one level per parent), a few
// parents at a time.
import type { Task } from "@corral/proto";
import type { Clients } from "../api/clients.js";

export async function loadTaskTree(clients: Clients, jobId: string, signal: AbortSignal): Promise<Map<string, Task>> {
  const tasks = new Map<string, Task>();
  const listLevel = async (parentId: string) => {
    let pageToken = "";
    do {
      const page = await clients.jobs.listTasks({ jobId, parentId, pageSize: 1000, pageToken }, { signal });
      for (const t of page.tasks) tasks.set(t.id, t);
      pageToken = page.nextPageToken;
    } while (pageToken);
  };
  await listLevel("");
  let frontier = [...tasks.values()].filter((t) => t.subtaskCount > 0).map((t) => t.id);
  while (frontier.length > 0) {
    const before = new Set(tasks.keys());
    for (let i = 0; i < frontier.length; i += 8) await Promise.all(frontier.slice(i, i + 8).map(listLevel));
    frontier = [...tasks.values()].filter((t) => !before.has(t.id) && t.subtaskCount > 0).map((t) => t.id);
  }
  return tasks;
}
