// Cursor pagination: every List RPC takes page_size and page_token and answers next_page_token.

/** Collects every page of a list RPC, stopping early once `limit` items are in. */
export async function collectPages<T>(
  fetchPage: (pageToken: string) => Promise<{ items: T[]; nextPageToken: string }>,
  limit = Number.POSITIVE_INFINITY,
): Promise<T[]> {
  const out: T[] = [];
  let token = "";
  for (;;) {
    const page = await fetchPage(token);
    for (const item of page.items) {
      if (out.length >= limit) return out;
      out.push(item);
    }
    if (!page.nextPageToken || out.length >= limit) return out;
    token = page.nextPageToken;
  }
}
