// The signed-in session: the clients every page calls through. A call answered UNAUTHENTICATED
// (the key was revoked meanwhile) signs the tab out with that message.
import { createContext, useContext } from "react";
import type { Clients } from "./clients.js";

export interface Session {
  clients: Clients;
  signOut(message?: string): void;
}

export const SessionContext = createContext<Session | undefined>(undefined);

export function useSession(): Session {
  const s = useContext(SessionContext);
  if (!s) throw new Error("useSession outside a signed-in page");
  return s;
}
