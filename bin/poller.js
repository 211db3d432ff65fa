#!/usr/bin/env node
// libuv's pool runs every file write and fsync; its default of 4 threads serialises the fsyncs
// of 8 concurrent transfers. Set before anything uses the pool (hence the dynamic import).
process.env.UV_THREADPOOL_SIZE ??= '16';
await import('../dist/src/cli/index.js');
