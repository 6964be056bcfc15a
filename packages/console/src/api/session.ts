// The API key the console calls with: kept in this tab's sessionStorage only, so it goes when the
// tab closes and is never shared with another tab or written to disk by us.
const storageKey = "corral.apiKey";

export function readApiKey(): string | undefined {
  return sessionStorage.getItem(storageKey) ?? undefined;
}

export function saveApiKey(key: string): void {
  sessionStorage.setItem(storageKey, key);
}

export function forgetApiKey(): void {
  sessionStorage.removeItem(storageKey);
}
