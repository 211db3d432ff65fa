import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/** A fresh directory under the OS tmp dir, removed by `remove()`. */
export interface TmpDir {
  readonly path: string;
  remove(): Promise<void>;
}

export async function makeTmpDir(prefix = 'poller-test-'): Promise<TmpDir> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  return {
    path: dir,
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}
