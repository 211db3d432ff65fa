/** `poller plugins` and `poller check`: what is configured, and does it work. */
import type { CommandModule } from 'yargs';
import { loadConfig } from '../config/load.js';
import { coerceError, errorCode } from '../errors.js';
import { BUILTIN_PLUGINS, loadPlugins } from '../plugins/loader.js';
import { openApp } from './app.js';
import { type CommonArgs, commonOptions } from './options.js';
import { printJson, printLine, printTable } from './output.js';

export const pluginsCommand: CommandModule<object, CommonArgs> = {
  command: 'plugins',
  describe: 'List the configured plugins (and the built-in ones)',
  builder: (y) => commonOptions(y) as never,
  handler: async (args) => {
    const config = loadConfig(args.config, process.env, { needSecrets: false });
    const plugins = await loadPlugins(config.plugins, config.baseDir);
    const rows = plugins.map((p, i) => ({
      name: p.name,
      kind: p.kind,
      origin: p.origin,
      match:
        config.plugins[i]?.match ?? (typeof p.plugin.match === 'function' ? '(function)' : (p.plugin.match ?? '**')),
      sources: p.sources ?? 'all',
      timeoutMs: p.timeoutMs,
      maxAttempts: p.maxAttempts,
    }));
    if (args.json) return printJson({ plugins: rows, builtins: BUILTIN_PLUGINS });
    printTable(
      ['name', 'kind', 'from', 'match', 'sources', 'timeout', 'attempts'],
      rows.map((r) => [
        r.name,
        r.kind,
        r.origin,
        String(r.match),
        String(r.sources),
        `${r.timeoutMs} ms`,
        r.maxAttempts,
      ]),
    );
    printLine(`built-in: ${BUILTIN_PLUGINS.join(', ')}`);
  },
};

export const checkCommand: CommandModule<object, CommonArgs> = {
  command: 'check',
  describe: 'Validate the config, load the plugins and try each source (list its root)',
  builder: (y) => commonOptions(y) as never,
  handler: async (args) => {
    const app = await openApp({
      configPath: args.config,
      logTo: 'stderr',
      logLevel: args.logLevel ?? 'error',
      ledgerMode: 'probe',
    });
    try {
      await app.runner();
      const results = [];
      for (const src of app.config.sources) {
        const started = Date.now();
        try {
          const entries = await app
            .source(src)
            .list('', { signal: AbortSignal.timeout(src.connectTimeoutMs + src.dataTimeoutMs) });
          results.push({ source: src.name, ok: true, entries: entries.length, ms: Date.now() - started });
        } catch (thrown) {
          const err = coerceError(thrown);
          results.push({
            source: src.name,
            ok: false,
            code: errorCode(err),
            error: err.message,
            ms: Date.now() - started,
          });
        }
      }
      if (args.json) printJson({ config: 'ok', sources: results });
      else {
        printLine(`config ${args.config}: ok`);
        for (const r of results)
          printLine(
            r.ok ? `${r.source}: ok, ${r.entries} entries in the root (${r.ms} ms)` : `${r.source}: FAILED ${r.error}`,
          );
      }
      process.exitCode = results.every((r) => r.ok) ? 0 : 1;
    } finally {
      await app.close();
    }
  },
};
