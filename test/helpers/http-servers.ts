/**
 * Real web servers on 127.0.0.1 for the HTTP source tests: nginx (HTML or JSON autoindex),
 * lighttpd (mod_dirlisting), `python3 -m http.server`; and s3rver (S3 API) in process. Each serves
 * a fresh tmp directory and is stopped by `close()`. A server whose binary is missing is reported
 * by `httpServerMissing` so suites can skip with a notice (and fail under CI=true).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from './free-port.js';
import { waitFor } from './wait-for.js';

export type WebServerKind = 'nginx-html' | 'nginx-json' | 'lighttpd' | 'python';

export interface TestWebServer {
  kind: WebServerKind;
  port: number;
  /** The served directory. */
  root: string;
  /**
   * Requests logged by the server: method and path, in order (nginx and lighttpd only). lighttpd
   * buffers its log, so this first sends a marker request and waits until the log shows it.
   */
  accessLog(): Promise<string[]>;
  close(): Promise<void>;
}

const BINARIES: Record<WebServerKind, string> = {
  'nginx-html': '/usr/sbin/nginx',
  'nginx-json': '/usr/sbin/nginx',
  lighttpd: '/usr/sbin/lighttpd',
  python: 'python3',
};

/** Why a server cannot run here, or undefined. */
export function httpServerMissing(kind: WebServerKind): string | undefined {
  const bin = BINARIES[kind];
  if (bin.startsWith('/') && !existsSync(bin)) return `${bin} is not installed (bash scripts/install-http-servers.sh)`;
  return undefined;
}

async function portOpen(port: number): Promise<boolean> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(1000) });
    await res.arrayBuffer();
    return true;
  } catch {
    return false;
  }
}

export async function startWebServer(kind: WebServerKind): Promise<TestWebServer> {
  const dir = await mkdtemp(path.join(tmpdir(), `poller-${kind}-`));
  const root = path.join(dir, 'www');
  await mkdir(root);
  const port = await freePort();
  const access = path.join(dir, 'access.log');
  let child: ChildProcess;
  if (kind === 'nginx-html' || kind === 'nginx-json') {
    for (const d of ['client', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) await mkdir(path.join(dir, d));
    const conf = path.join(dir, 'nginx.conf');
    await writeFile(
      conf,
      `daemon off;
worker_processes 1;
user root;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log;
events { worker_connections 256; }
http {
  access_log ${access} ;
  client_body_temp_path ${dir}/client;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  types { application/octet-stream bin; }
  server {
    listen 127.0.0.1:${port};
    root ${root};
    location / { autoindex on; ${kind === 'nginx-json' ? 'autoindex_format json;' : ''} }
    location /protected/ { autoindex on; auth_basic "x"; auth_basic_user_file ${dir}/htpasswd; }
  }
}
`,
    );
    child = spawn('/usr/sbin/nginx', ['-c', conf, '-p', dir], { stdio: 'ignore' });
  } else if (kind === 'lighttpd') {
    const conf = path.join(dir, 'lighttpd.conf');
    await writeFile(
      conf,
      `server.document-root = "${root}"
server.bind = "127.0.0.1"
server.port = ${port}
server.modules = ( "mod_accesslog" )
dir-listing.activate = "enable"
dir-listing.encoding = "utf-8"
accesslog.filename = "${access}"
server.errorlog = "${dir}/error.log"
server.stat-cache-engine = "disable"
mimetype.assign = ( "" => "application/octet-stream" )
`,
    );
    child = spawn('/usr/sbin/lighttpd', ['-D', '-f', conf], { stdio: 'ignore', env: { ...process.env, TZ: 'UTC' } });
  } else {
    child = spawn('python3', ['-m', 'http.server', String(port), '--bind', '127.0.0.1', '--directory', root], {
      stdio: 'ignore',
    });
  }
  let exited = false;
  let markers = 0;
  child.once('exit', () => {
    exited = true;
  });
  await waitFor(async () => exited || (await portOpen(port)), { timeoutMs: 15_000 });
  if (exited) throw new Error(`${kind} exited at start; see ${dir}`);
  return {
    kind,
    port,
    root,
    async accessLog() {
      const marker = `/__marker-${++markers}`;
      await fetch(`http://127.0.0.1:${port}${marker}`).then((r) => r.arrayBuffer());
      const lines = await waitFor(
        async () => {
          const text = await readFile(access, 'utf8').catch(() => '');
          const all = [...text.matchAll(/"([A-Z]+) (\S+) HTTP/g)].map((m) => `${m[1]} ${m[2]}`);
          return all.includes(`GET ${marker}`) ? all : undefined;
        },
        { timeoutMs: 15_000 },
      );
      return lines.filter((l) => !l.includes('/__marker-'));
    },
    async close() {
      if (!exited) {
        const gone = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await gone;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
