/**
 * s3://bucket/prefix sources (SigV4 over undici): keys from the config, else AWS_* env, else the
 * instance profile; unsigned only with `anonymous: true`.
 */
import { z } from 'zod';
import { defineSourceKind, type KindContext } from '../kind.js';
import type { S3Settings } from '../source.js';

const options = {
  endpoint: z
    .string()
    .url()
    .optional()
    .describe('S3: endpoint URL (MinIO, Ceph, another region); default https://s3.<region>.amazonaws.com.'),
  region: z.string().default('us-east-1').describe('S3: region used in request signatures.'),
  forcePathStyle: z.boolean().default(false).describe('S3: bucket in the URL path instead of the host name.'),
  accessKeyId: z
    .string()
    .optional()
    .describe('S3: access key id; default AWS_ACCESS_KEY_ID; none: the instance profile (IMDSv2).'),
  secretAccessKey: z.string().optional().describe('S3: secret key; write ${ENV_VAR} rather than the secret.'),
  secretAccessKeyFile: z.string().optional().describe('S3: file holding the secret key.'),
  anonymous: z
    .boolean()
    .default(false)
    .describe('S3: unsigned requests (public buckets), even when AWS_* keys are set.'),
};

type S3Options = z.output<z.ZodObject<typeof options>>;

export const s3Kind = defineSourceKind({
  schemes: ['s3'],
  label: 's3',
  options,
  defaultPort: () => 443,
  after: {
    delete: true,
    move: false,
    refusal: 's3 sources can delete (after: delete) but not move; use after: delete or remove it',
  },
  settings: (ctx) => ({ s3: s3Settings(ctx) }),
  async load() {
    const { createS3Source } = await import('./s3-source.js');
    return (opts) => createS3Source(opts);
  },
});

function s3Settings(ctx: KindContext<S3Options>): S3Settings {
  const { options: s, url, at, env, readSecret, issue } = ctx;
  if (s.secretAccessKey !== undefined && s.secretAccessKeyFile !== undefined)
    issue(`${at}.secretAccessKey: give secretAccessKey or secretAccessKeyFile, not both`);
  const secret = s.secretAccessKeyFile
    ? readSecret(s.secretAccessKeyFile, `${at}.secretAccessKeyFile`)
    : s.secretAccessKey;
  const accessKeyId = s.accessKeyId ?? (secret === undefined ? env['AWS_ACCESS_KEY_ID'] : undefined);
  const secretAccessKey = secret ?? (s.accessKeyId === undefined ? env['AWS_SECRET_ACCESS_KEY'] : undefined);
  const sessionToken = s.accessKeyId === undefined ? env['AWS_SESSION_TOKEN'] : undefined;
  if (ctx.needSecrets && !s.anonymous && (accessKeyId === undefined) !== (secretAccessKey === undefined)) {
    issue(`${at}: give both accessKeyId and secretAccessKey (or secretAccessKeyFile), or anonymous: true`);
  }
  const hasKeys = accessKeyId !== undefined && secretAccessKey !== undefined;
  // Neither keys nor anonymous: the instance profile, unless the metadata service is switched off.
  const useProfile = !s.anonymous && !hasKeys && accessKeyId === undefined && secretAccessKey === undefined;
  if (useProfile && env['AWS_EC2_METADATA_DISABLED']?.toLowerCase() === 'true') {
    issue(
      `${at}: no S3 credentials: give accessKeyId and secretAccessKey(File) (or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY), anonymous: true for a public bucket, or unset AWS_EC2_METADATA_DISABLED to use the instance profile`,
    );
  }
  return {
    bucket: url.hostname,
    ...(s.endpoint !== undefined && { endpoint: s.endpoint.replace(/\/+$/, '') }),
    region: s.region,
    forcePathStyle: s.forcePathStyle,
    ...(!s.anonymous &&
      accessKeyId !== undefined &&
      secretAccessKey !== undefined && {
        credentials: { accessKeyId, secretAccessKey, ...(sessionToken && { sessionToken }) },
      }),
    ...(useProfile && {
      instanceProfile: env['AWS_EC2_METADATA_SERVICE_ENDPOINT']
        ? { endpoint: env['AWS_EC2_METADATA_SERVICE_ENDPOINT'].replace(/\/+$/, '') }
        : {},
    }),
  };
}
