// The registry's migrations in order; kysely applies them by name, so names must sort.
import type { Migration } from "kysely";
import * as m0001 from "./0001-create-teams.js";
import * as m0002 from "./0002-create-api-keys.js";
import * as m0003 from "./0003-create-locations-and-hardware.js";
import * as m0004 from "./0004-create-configurations.js";
import * as m0005 from "./0005-create-clusters.js";
import * as m0006 from "./0006-create-nodes.js";
import * as m0007 from "./0007-spec-reference-keys.js";
import * as m0008 from "./0008-create-releases.js";
import * as m0009 from "./0009-create-hosts.js";
import * as m0010 from "./0010-clusters-provisioned.js";
import * as m0011 from "./0011-create-routes.js";
import * as m0012 from "./0012-node-running-tasks.js";
import * as m0013 from "./0013-broker-instances.js";

/** The Postgres schema the registry's tables live in. */
export const REGISTRY_SCHEMA = "registry";

export const registryMigrations: Record<string, Migration> = {
  "0001-create-teams": m0001,
  "0002-create-api-keys": m0002,
  "0003-create-locations-and-hardware": m0003,
  "0004-create-configurations": m0004,
  "0005-create-clusters": m0005,
  "0006-create-nodes": m0006,
  "0007-spec-reference-keys": m0007,
  "0008-create-releases": m0008,
  "0009-create-hosts": m0009,
  "0010-clusters-provisioned": m0010,
  "0011-create-routes": m0011,
  "0012-node-running-tasks": m0012,
  "0013-broker-instances": m0013,
};
