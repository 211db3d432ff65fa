/**
 * The status page as the HTTP server serves it: the document, the page rendered from a fresh
 * one with the request's nonce, and `why`. Built here so the server (src/observe/http.ts) knows
 * neither the page nor the ledger behind it.
 */
import type { StatusPageOptions } from '../observe/http.js';
import { pageCsp, renderPage } from './page.js';
import type { StatusReport } from './report.js';

export function statusPage(
  report: () => Promise<StatusReport>,
  why: StatusPageOptions['why'],
  refreshMs: number,
): StatusPageOptions {
  return {
    report,
    page: async (nonce) => ({ html: renderPage(await report(), { nonce, refreshMs }), csp: pageCsp(nonce) }),
    why,
  };
}
