// A stand-in for `corral runner start` in agent tests: prints its arguments, stays up, exits 0 on
// SIGTERM (unless its cluster is "ignores-term"), and exits when its agent's pipe closes.
import net from "node:net";

const args = process.argv.slice(2);
const arg = (name) => args[args.indexOf(name) + 1];
const runnerId = arg("--runner-id");
const cluster = arg("--cluster");

process.on("SIGTERM", () => {
  console.log(`fake runner ${runnerId} draining`);
  if (cluster !== "ignores-term") setTimeout(() => process.exit(0), 20);
});

// "up" is printed once the SIGTERM handler is in place: tests wait for it before stopping.
console.log(`fake runner ${runnerId} up: cluster ${cluster}, concurrency ${arg("--concurrency")}, builtins ${args.includes("--builtins")}`);
console.error(`fake runner ${runnerId} key ${process.env.CORRAL_API_KEY ? "set" : "missing"}, url ${process.env.CORRAL_URL}`);


const fd = process.env.CORRAL_PARENT_PIPE_FD;
if (fd) {
  const pipe = new net.Socket({ fd: Number(fd), readable: true, writable: false });
  const gone = () => process.exit(3);
  pipe.on("end", gone);
  pipe.on("close", gone);
  pipe.on("error", gone);
  pipe.resume();
  pipe.unref();
}
setInterval(() => undefined, 60_000);
