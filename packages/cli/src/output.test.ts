// Names come from the server, where any key of the team writes them: an escape sequence in a
// cluster name must show as text, not clear the screen, retitle the terminal or fake output.
import { describe, expect, it } from "vitest";
import { tmpdir } from "node:os";
import { Code, ConnectError, createRouterTransport, type ConnectRouter } from "@connectrpc/connect";
import { ClusterService } from "@corral/proto";
import { Client } from "@corral/sdk";
import { runCli } from "./run.js";
import { printable, table, type Io } from "./output.js";
import { createProgressView } from "./progress-bars.js";

const evil = "evil\x1b[2J\x1b]0;pwned\x07\u009b31m\r\nfake line";

function routes(router: ConnectRouter) {
  router.service(ClusterService, {
    listClusters: () => ({ clusters: [{ slug: "evil-AAAAAAAAAAAAAA", name: evil, description: evil }] }),
    getCluster: (req) => {
      if (req.slug === "missing") throw new ConnectError(`cluster ${evil} not found`, Code.NotFound);
      return { cluster: { slug: req.slug, name: evil, description: evil } };
    },
  });
}

async function cli(args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const io: Io = { out: (s) => void out.push(s), err: (s) => void err.push(s), isTTY: false };
  const code = await runCli(args, { io, env: {}, cwd: tmpdir(), createClient: () => new Client({ transport: createRouterTransport(routes) }) });
  return { code, out: out.join("\n"), err: err.join("\n") };
}

/** Any C0 control but newline, DEL or C1 control. */
const raw = /[\x00-\x09\x0b-\x1f\x7f-\x9f]/;

describe("printing server-made text", () => {
  it("cluster list shows an ESC in a cluster name as visible \\x1b, on one table line", async () => {
    const { code, out } = await cli(["cluster", "list"]);
    expect(code).toBe(0);
    expect(out).not.toMatch(raw);
    expect(out).toContain("evil\\x1b[2J\\x1b]0;pwned\\x07\\x9b31m\\x0d\\x0afake line");
    expect(out.split("\n")).toHaveLength(2);
  });

  it("cluster get and error messages escape it too", async () => {
    const got = await cli(["cluster", "get", "evil-AAAAAAAAAAAAAA"]);
    expect(got.code).toBe(0);
    expect(got.out).toContain("evil\\x1b[2J");
    expect(got.out).not.toMatch(raw);
    const missing = await cli(["cluster", "get", "missing"]);
    expect(missing.err).toContain("evil\\x1b[2J");
    expect(missing.err).not.toMatch(raw);
  });

  it("keeps newlines and tabs in plain text, and escapes everything in a table cell", () => {
    expect(printable("a\tb\nc\x1bd\u202ee")).toBe("a\tb\nc\\x1bd\\u202ee");
    expect(table(["NAME"], [["a\nb"]])).toBe("NAME\na\\x0ab");
  });

  it("progress bars keep their own redraw sequences but escape task labels", () => {
    const written: string[] = [];
    const view = createProgressView({ out: () => {}, err: () => {}, isTTY: true, control: (s) => void written.push(s) });
    view.update("RUNNING", [{ label: "tiles\x1b[2J", done: 1n, total: 2n } as never]);
    expect(written[0]).toContain("\x1b[2K"); // ours
    expect(written[0]).toContain("tiles\\x1b[2J");
    expect(written[0]).not.toContain("\x1b[2J");
  });
});
