/** Validates WIS2 notification messages against the schema kept in the repo, plus the rules JSON Schema cannot say. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { REPO_ROOT } from './engine-env.js';

const schema = JSON.parse(
  readFileSync(path.join(REPO_ROOT, 'src', 'events', 'schema', 'wis2-notification-message.schema.json'), 'utf8'),
) as object;
const ajv = new Ajv2020({ allErrors: true, strict: false });
(addFormats as unknown as (a: Ajv2020) => void)(ajv);
const validate = ajv.compile(schema);

/** Problems of one message as received (its bytes); empty when it conforms. */
export function wnmProblems(body: Buffer | string): string[] {
  const bytes = typeof body === 'string' ? Buffer.from(body) : body;
  const problems: string[] = [];
  if (bytes.length > 8192) problems.push(`message is ${bytes.length} bytes (> 8192)`);
  const msg = JSON.parse(bytes.toString('utf8')) as { links?: Array<{ rel: string; type?: string; length?: number }> };
  if (!validate(msg)) problems.push(...(validate.errors ?? []).map((e) => `${e.instancePath} ${e.message}`));
  const data = (msg.links ?? []).filter((l) => l.rel === 'canonical' || l.rel === 'update');
  if (data.length !== 1) problems.push(`${data.length} canonical/update links (need exactly one)`);
  if (data[0] && (data[0].type === undefined || data[0].length === undefined))
    problems.push('link without type/length');
  return problems;
}
