// The image's HEALTHCHECK: exits 0 when the service in this container answers GET /healthz with
// 200 "SERVING". The port is $PORT when set; otherwise the container runs a service on its default
// port, and whichever of the three defaults answers is the one (the check cannot see the command).
// Plain node (no curl in slim images); node 20's fetch speaks HTTP/1.1, which every port also serves.
const ports = process.env.PORT ? [process.env.PORT] : ["7701", "7702", "7703"];
const timeoutMs = 2_500;

async function serving(port) {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(timeoutMs) });
    const body = (await res.text()).trim();
    return res.status === 200 && body === "SERVING";
  } catch {
    return false;
  }
}

const results = await Promise.all(ports.map(serving));
process.exit(results.some(Boolean) ? 0 : 1);
