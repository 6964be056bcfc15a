// @corral/wire: what both ends of Corral's RPCs share on the client side: the HTTP/2 unary
// transport, the API-key interceptor and the queue behind a Work stream's outgoing half.
export { createH2Transport, grpcTimeout, type H2TransportOptions, type WireProtocol } from "./h2-transport.js";
export { createAuthInterceptor } from "./auth-interceptor.js";
export { AsyncQueue } from "./async-queue.js";
export { keepWireBytes, parseKeepingBytes, wireBytesOf } from "./wire-bytes.js";
