// Preloaded by prisma.sh (PRISMA_ORACLE_FAST_EXIT=0 leaves it out).
//
// Two timers keep the Prisma CLI alive for ~10 s after its work is done: the wasm schema
// engine arms a 10 s timer around pg_advisory_lock and never clears it, and node-postgres
// keeps idle pool connections for 10 s (prisma.config.ts sets allowExitOnIdle for those).
// Long timers are unref'd here: they still fire while work is pending, but no longer hold
// the process open once the CLI is finished.
const setTimeoutOriginal = global.setTimeout;
global.setTimeout = function (callback, ms, ...args) {
  const timer = setTimeoutOriginal(callback, ms, ...args);
  if (typeof ms === "number" && ms >= 1000 && timer && typeof timer.unref === "function") {
    timer.unref();
  }
  return timer;
};
