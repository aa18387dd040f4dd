/**
 * The placeholders of the committed SQL files. Each is written `${NAME}` and named after the environment
 * variable it comes from; `makoto-lake sql` fills them in from the config. Athena's own `${tenant_id}` and
 * `${dt}` in `storage.location.template` are lower case and never touched.
 */
import type { Config } from '../config.js';
import { ConfigError } from '../errors.js';

export type SqlTarget = 'athena' | 'synapse';
export const SQL_TARGETS: readonly SqlTarget[] = ['athena', 'synapse'];

export interface Placeholder {
  readonly name: string;
  readonly target: SqlTarget;
  /** Where the value comes from, for error messages and docs/SQL.md. */
  readonly source: string;
  /** Only values matching this reach SQL text (they sit inside string literals). */
  readonly pattern: RegExp;
  readonly value: (config: Config) => string | undefined;
}

export const PLACEHOLDERS: readonly Placeholder[] = [
  {
    name: 'S3_BUCKET_NAME',
    target: 'athena',
    source: 'S3_BUCKET_NAME',
    pattern: /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/,
    value: (config) => config.aws.bucket,
  },
  {
    name: 'AZURE_STORAGE_ACCOUNT',
    target: 'synapse',
    source:
      "the account name in AZURE_STORAGE_ACCOUNT_URL (https://<account>.blob.core.windows.net) or AZURE_STORAGE_CONNECTION_STRING's AccountName",
    pattern: /^[a-z0-9]{3,24}$/,
    value: (config) => storageAccountName(config),
  },
  {
    name: 'AZURE_STORAGE_CONTAINER',
    target: 'synapse',
    source: 'AZURE_STORAGE_CONTAINER (default makoto)',
    pattern: /^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}$/,
    value: (config) => config.azure.container,
  },
];

/** The storage account name from the account URL's host, else the connection string's AccountName. */
export function storageAccountName(config: Config): string | undefined {
  if (config.azure.accountUrl) {
    try {
      const host = new URL(config.azure.accountUrl).hostname;
      const first = host.split('.')[0];
      if (first && host.includes('.')) return first;
    } catch {
      // fall through to the connection string
    }
  }
  const match = /(?:^|;)\s*AccountName=([^;]+)/i.exec(config.azure.connectionString ?? '');
  return match?.[1]?.trim();
}

/** The value of every placeholder of `target`, validated; ConfigError names what is missing or malformed. */
export function placeholderValues(config: Config, target: SqlTarget): Record<string, string> {
  const values: Record<string, string> = {};
  for (const p of PLACEHOLDERS.filter((x) => x.target === target)) {
    const value = p.value(config);
    if (value === undefined) throw new ConfigError(`sql --target ${target} needs \${${p.name}}: set ${p.source}`);
    if (!p.pattern.test(value)) {
      throw new ConfigError(`\${${p.name}} must match ${p.pattern} (from ${p.source}), got ${JSON.stringify(value)}`);
    }
    values[p.name] = value;
  }
  return values;
}

/** Replaces `${NAME}` for every given name; any other `${UPPER_CASE}` left over is an error. */
export function renderPlaceholders(text: string, values: Readonly<Record<string, string>>): string {
  const rendered = text.replace(/\$\{([A-Z][A-Z0-9_]*)\}/g, (whole, name: string) => values[name] ?? whole);
  const left = /\$\{([A-Z][A-Z0-9_]*)\}/.exec(rendered);
  if (left) throw new ConfigError(`no value for placeholder ${left[0]}`);
  return rendered;
}
