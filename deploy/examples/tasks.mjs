// A sample tasks module for `corral runner start --tasks /app/examples/tasks.mjs`: the SDK's built-in
// tasks (corral/Echo, corral/RunScript). RunScript runs any command a key of the team submits, so a
// runner refuses its tasks (they fail, not retried) unless started with --allow-scripts: read
// `corral runner start --help` before adding it. Your own image adds a module like this one that
// exports your Task classes:
//   FROM corral
//   COPY --chown=0:0 tasks/ /app/tasks/
//   CMD ["runner", "start", "--cluster", "<slug>", "--tasks", "/app/tasks/index.js"]
export { Echo, RunScript } from "@corral/sdk";
