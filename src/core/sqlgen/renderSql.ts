import type { Config } from '../config.js';
import type { GeneratedSqlFile } from './generatedSqlFile.js';
import { generatedSqlFiles } from './generateSql.js';
import { placeholderValues, renderPlaceholders, type SqlTarget } from './placeholders.js';

export interface RenderedSql {
  /** Each DDL file with its placeholders filled in; `path` is the bare file name. */
  readonly files: GeneratedSqlFile[];
  /** All of them as one script, in run order (Athena statements terminated with `;`). */
  readonly script: string;
}

/**
 * The DDL of `target` with `${S3_BUCKET_NAME}` / `${AZURE_STORAGE_ACCOUNT}` / `${AZURE_STORAGE_CONTAINER}`
 * filled in from the config. Throws ConfigError when a value is missing or not a valid name.
 *
 * @example renderSql(loadConfig({ S3_BUCKET_NAME: 'makoto-lake-prod' }), 'athena').files[1].text
 */
export function renderSql(config: Config, target: SqlTarget): RenderedSql {
  const values = placeholderValues(config, target);
  const files = generatedSqlFiles(target).map((f) => ({
    path: f.path.slice(f.path.indexOf('/') + 1),
    text: renderPlaceholders(f.text, values),
  }));
  const script = files.map((f) => (target === 'athena' ? `${f.text.trimEnd()};\n` : f.text)).join('\n');
  return { files, script };
}
