/**
 * `sql`: the Athena / Synapse DDL with the bucket or storage account filled in from the environment.
 *
 *   makoto-lake sql --target athena|synapse [--out DIR]
 */
import { parseArgs } from 'node:util';
import type { Config } from '../../src/core/config.js';
import { UsageError } from '../../src/core/errors.js';
import { writeSqlFiles } from '../../src/core/sqlgen/generateSql.js';
import { SQL_TARGETS, type SqlTarget } from '../../src/core/sqlgen/placeholders.js';
import { renderSql } from '../../src/core/sqlgen/renderSql.js';
import type { Out } from './args.js';

export async function sqlCommand(args: readonly string[], config: Config, out: Out): Promise<number> {
  const { values } = parseArgs({ args: [...args], options: { target: { type: 'string' }, out: { type: 'string' } } });
  if (!(SQL_TARGETS as readonly string[]).includes(values.target ?? '')) {
    throw new UsageError(`--target must be ${SQL_TARGETS.join(' or ')}, got ${JSON.stringify(values.target ?? null)}`);
  }
  const rendered = renderSql(config, values.target as SqlTarget);
  if (values.out === undefined) {
    out.stdout(rendered.script.trimEnd());
    return 0;
  }
  for (const path of await writeSqlFiles(values.out, rendered.files)) out.stderr(`wrote ${path}`);
  return 0;
}
