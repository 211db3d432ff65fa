/** Runs one measurement in a child process, so each has its own peak RSS. */
import { spawn } from 'node:child_process';

export interface ChildMeasure {
  ms: number;
  maxRssMb: number;
  [extra: string]: unknown;
}

/** Start `node <script> <mode> <json>`; the child prints one JSON line with its measure. */
export function measureInChild(script: string, mode: string, args: unknown): Promise<ChildMeasure> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, mode, JSON.stringify(args)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`${mode} child exited ${code}`));
      const last = out.trim().split('\n').pop() ?? '';
      try {
        resolve(JSON.parse(last) as ChildMeasure);
      } catch {
        reject(new Error(`${mode} child printed no measure: ${out.slice(-500)}`));
      }
    });
  });
}

/** What a child reports about itself. */
export function selfMeasure(startedMs: number, extra: Record<string, unknown> = {}): ChildMeasure {
  return { ms: performance.now() - startedMs, maxRssMb: process.resourceUsage().maxRSS / 1024, ...extra };
}
