/**
 * The plugin API's types: `ctx.options` is the output type of the plugin's zod schema (defaults
 * applied, transforms run), in `setup`, `process` and `teardown` alike. Checked by the compiler
 * (`vitest` typecheck and `tsc --noEmit`); nothing here runs.
 */
import { describe, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import {
  definePlugin,
  type EmittedOutput,
  type Plugin,
  type PluginContext,
  type PluginFile,
  type PluginSetupContext,
  type PluginVolume,
  type PluginVolumeMember,
  type VolumePlugin,
} from '../../src/plugins/api.js';

const options = z.object({
  out: z.string(),
  level: z.number().default(3),
  mode: z.enum(['copy', 'link']).optional(),
  pattern: z.string().transform((s) => new RegExp(s)),
});

interface Expected {
  out: string;
  level: number;
  mode?: 'copy' | 'link' | undefined;
  pattern: RegExp;
}

describe('definePlugin', () => {
  it('types ctx.options from the zod schema, as its output', () => {
    const plugin = definePlugin({
      name: 'typed',
      options,
      setup(ctx) {
        expectTypeOf(ctx.options).toEqualTypeOf<Expected>();
        expectTypeOf(ctx).toEqualTypeOf<PluginSetupContext<Expected>>();
      },
      process(file, ctx) {
        expectTypeOf(ctx.options).toEqualTypeOf<Expected>();
        // A default makes the field present; a transform gives its result, not the input string.
        expectTypeOf(ctx.options.level).toEqualTypeOf<number>();
        expectTypeOf(ctx.options.pattern).toEqualTypeOf<RegExp>();
        // @ts-expect-error: not in the schema
        ctx.options.missing;
        expectTypeOf(ctx).toEqualTypeOf<PluginContext<Expected>>();
        expectTypeOf(file).toEqualTypeOf<PluginFile>();
      },
      teardown(ctx) {
        expectTypeOf(ctx.options).toEqualTypeOf<Expected>();
      },
    });
    expectTypeOf(plugin).toEqualTypeOf<Plugin<typeof options>>();
    expectTypeOf(plugin.apiVersion).toEqualTypeOf<number>();
  });

  it('leaves ctx.options unknown without a schema', () => {
    definePlugin({
      name: 'untyped',
      process(_file, ctx) {
        expectTypeOf(ctx.options).toBeUnknown();
      },
    });
  });

  it('gives process the per-run context', () => {
    definePlugin({
      name: 'context',
      process(file, ctx) {
        expectTypeOf(ctx.signal).toEqualTypeOf<AbortSignal>();
        expectTypeOf(ctx.attempt).toEqualTypeOf<number>();
        expectTypeOf(ctx.stateDir).toEqualTypeOf<string>();
        expectTypeOf(ctx.emit).parameter(0).toEqualTypeOf<EmittedOutput>();
        expectTypeOf(file.localPath).toEqualTypeOf<string>();
        expectTypeOf(file.mtimeMs).toEqualTypeOf<number>();
        // @ts-expect-error: PluginFile is read-only
        file.localPath = '/elsewhere';
      },
    });
  });

  it('accepts globs or a predicate as match, and nothing else', () => {
    definePlugin({ name: 'one-glob', match: '**/*.bufr', process() {} });
    definePlugin({ name: 'globs', match: ['**/*.bufr', '**/*.BUFR'], process() {} });
    definePlugin({ name: 'predicate', match: (file) => file.sizeBytes > 0, process() {} });
    // @ts-expect-error: a RegExp is not a match
    definePlugin({ name: 'regexp', match: /\.bufr$/, process() {} });
  });
});

describe("definePlugin({ kind: 'volume' })", () => {
  it('gives process a volume, typed options and the per-run context', () => {
    const plugin = definePlugin({
      kind: 'volume',
      name: 'volume-typed',
      options,
      process(volume, ctx) {
        expectTypeOf(volume).toEqualTypeOf<PluginVolume>();
        expectTypeOf(volume.members).toEqualTypeOf<readonly PluginVolumeMember[]>();
        expectTypeOf(volume.members[0]!.member).toEqualTypeOf<string>();
        expectTypeOf(volume.members[0]!.localPath).toEqualTypeOf<string>();
        expectTypeOf(volume.fields).toEqualTypeOf<Readonly<Record<string, string>>>();
        expectTypeOf(volume.complete).toEqualTypeOf<boolean>();
        expectTypeOf(volume.partial).toEqualTypeOf<boolean>();
        expectTypeOf(volume.missing).toEqualTypeOf<readonly string[]>();
        expectTypeOf(ctx).toEqualTypeOf<PluginContext<Expected>>();
        // @ts-expect-error: a volume has no single localPath
        volume.localPath;
        // @ts-expect-error: PluginVolume is read-only
        volume.key = 'other';
      },
    });
    expectTypeOf(plugin).toEqualTypeOf<VolumePlugin<typeof options>>();
  });

  it('matches volumes by key globs or a predicate on the volume', () => {
    definePlugin({ kind: 'volume', name: 'by-key', match: 'RMA11_*', process() {} });
    definePlugin({ kind: 'volume', name: 'by-fn', match: (v) => v.members.length > 3, process() {} });
    // @ts-expect-error: a file predicate is not a volume predicate
    definePlugin({ kind: 'volume', name: 'wrong', match: (f: PluginFile) => f.sizeBytes > 0, process() {} });
  });

  it('a file plugin still receives a file', () => {
    definePlugin({
      kind: 'file',
      name: 'explicit-file',
      process(file) {
        expectTypeOf(file).toEqualTypeOf<PluginFile>();
      },
    });
  });
});
