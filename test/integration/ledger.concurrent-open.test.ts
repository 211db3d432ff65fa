import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/engine-env.js';
import { makeTmpDir, type TmpDir } from '../helpers/tmp-dir.js';

const run = promisify(execFile);
const DATABASE = path.join(REPO_ROOT, 'dist', 'src', 'ledger', 'sqlite', 'database.js');

// Several processes opening one new ledger at once (a daemon and run-once backfills started
// together): switching it to WAL and migrating it must wait for one another, not fail.
const OPEN = `
  const { openDatabase } = await import(process.argv[1]);
  const db = openDatabase(process.argv[2], {});
  console.log(db.pragma('journal_mode', { simple: true }), db.pragma('user_version', { simple: true }));
  db.close();
`;

let tmp: TmpDir | undefined;
afterEach(async () => {
  await tmp?.remove();
  tmp = undefined;
});

describe('a new SQLite ledger opened by several processes at once', () => {
  it('is switched to WAL and migrated once, every process opens it', async () => {
    tmp = await makeTmpDir('ledger-open-');
    for (let round = 0; round < 3; round++) {
      const file = path.join(tmp.path, `ledger-${round}.db`);
      const outs = await Promise.all(
        Array.from({ length: 6 }, () => run(process.execPath, ['--input-type=module', '-e', OPEN, DATABASE, file])),
      );
      const lines = outs.map((o) => o.stdout.trim());
      expect(new Set(lines).size, lines.join('\n')).toBe(1);
      expect(lines[0]).toMatch(/^wal \d+$/);
    }
  });
});
