// The StorageLister port over the local filesystem and S3-compatible servers.
import type { StorageLister } from "../domain/ports.js";
import { listDirectory } from "./directory-lister.js";
import { listS3 } from "./s3-lister.js";

export function createStorageLister(options: { settleMs: number; env: Record<string, string | undefined> }): StorageLister {
  return {
    list(spec, cursor, since, now, signal) {
      if (spec.kind === "directory") return listDirectory(spec.path, cursor, since, { now, settleMs: options.settleMs });
      if (spec.kind === "s3") return listS3(spec, cursor, since, { env: options.env, signal });
      return Promise.resolve({ objects: [], cursor });
    },
  };
}
