#!/usr/bin/env -S node --max-semi-space-size=4
// The flag: V8's young generation grows to 2 x 16 MB semi-spaces under a busy transfer loop;
// 4 MB each keeps the many-small-files case about 30 MB smaller at the same CPU (bench/README.md).
// It must be given before the heap exists, hence here (and in the systemd unit's NODE_OPTIONS).
// `poller --version` answers before any module loads: it is what scripts and health checks run.
if (process.argv.length === 3 && process.argv[2] === '--version') {
  const { readFileSync } = await import('node:fs');
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  process.stdout.write(`${pkg.version}\n`);
} else {
  // libuv's pool runs every file write and fsync; its default of 4 threads serialises the fsyncs
  // of 8 concurrent transfers. Set before anything uses the pool (hence the dynamic import).
  process.env.UV_THREADPOOL_SIZE ??= '16';
  // The bundle (npm run build makes it) starts in about half the CPU of the module tree; a tree
  // compiled by tsc alone still runs.
  const { existsSync } = await import('node:fs');
  const bundle = new URL('../dist/bundle/index.js', import.meta.url);
  await import(existsSync(bundle) ? bundle.href : '../dist/src/cli/index.js');
}
