/** Secrets come from files (systemd credentials, mounted secrets), never from the config text. */
import { readFileSync } from 'node:fs';

/**
 * The text of a secret file without its final newline. An unreadable file adds one line to
 * `issues` when they are collected (commands that connect) and gives undefined.
 */
export function readSecretFile(file: string, at: string, issues: string[] | undefined): string | undefined {
  try {
    return readFileSync(file, 'utf8').replace(/\r?\n$/, '');
  } catch (err) {
    issues?.push(
      `${at}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'}); check the path and its permissions`,
    );
    return undefined;
  }
}
