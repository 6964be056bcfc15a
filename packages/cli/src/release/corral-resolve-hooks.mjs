// Module resolve hook of the publish-time inspection child: a bundle leaves @corral/* external (the
// release runner provides the SDK, as its own child processes do), and it sits in an empty
// directory, so those imports resolve from the CLI's own packages.
export async function resolve(specifier, context, next) {
  try {
    return await next(specifier, context);
  } catch (err) {
    if (!specifier.startsWith("@corral/") || err?.code !== "ERR_MODULE_NOT_FOUND") throw err;
    return next(specifier, { ...context, parentURL: import.meta.url });
  }
}
