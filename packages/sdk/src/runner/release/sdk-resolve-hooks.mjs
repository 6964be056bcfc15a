// Module resolve hook of release child processes: a bundle in the cache folder has no node_modules
// beside it, so its @corral/* imports (when the bundler left them external) resolve from the SDK.
export async function resolve(specifier, context, next) {
  try {
    return await next(specifier, context);
  } catch (err) {
    if (!specifier.startsWith("@corral/") || err?.code !== "ERR_MODULE_NOT_FOUND") throw err;
    return next(specifier, { ...context, parentURL: import.meta.url });
  }
}
