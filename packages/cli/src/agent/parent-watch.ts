// How a runner started by `corral agent` notices that the agent is gone, even after kill -9: the
// agent hands each runner one end of a pipe (CORRAL_PARENT_PIPE_FD) and never writes to it; the
// kernel closes the agent's end when the agent dies, and the runner reads end-of-file.
import net from "node:net";
import { parentPipeEnv } from "./runner-command.js";

/**
 * Calls `onGone` once when the parent's pipe closes. Answers undefined (and watches nothing) when
 * this process was not started by an agent. The pipe does not keep the process alive.
 */
export function watchParent(onGone: () => void, env: NodeJS.ProcessEnv = process.env): { close(): void } | undefined {
  const text = env[parentPipeEnv];
  if (text === undefined || !/^\d+$/.test(text)) return undefined;
  // Children of this runner (scripts) must not take the variable for a pipe they do not have.
  delete env[parentPipeEnv];
  let socket: net.Socket;
  try {
    socket = new net.Socket({ fd: Number(text), readable: true, writable: false });
  } catch {
    return undefined;
  }
  let called = false;
  const gone = () => {
    if (called) return;
    called = true;
    onGone();
  };
  socket.on("end", gone);
  socket.on("close", gone);
  socket.on("error", gone);
  socket.on("data", () => undefined);
  socket.unref();
  return {
    close() {
      called = true;
      socket.destroy();
    },
  };
}
