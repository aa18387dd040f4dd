/**
 * Regenerates the committed DDL under sql/ from the schema:
 *   node bin/run-ts.mjs scripts/generate-sql.ts          # write the DDL (0x_*.sql) and the sample queries (1x_*.sql)
 *   node bin/run-ts.mjs scripts/generate-sql.ts --check  # exit 1 if a committed file is stale
 * Placeholders stay as they are; `makoto-lake sql` renders them.
 */
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { generatedSqlFiles, staleSqlFiles, writeSqlFiles } from '../src/core/sqlgen/generateSql.js';
import { sampleQueryFiles } from '../src/core/sqlgen/sampleQueries.js';

const SQL_DIR = fileURLToPath(new URL('../sql/', import.meta.url));

export async function main(argv: readonly string[], _env: Readonly<Record<string, string | undefined>>): Promise<number> {
  const { values } = parseArgs({ args: [...argv], options: { check: { type: 'boolean' }, dir: { type: 'string' } } });
  const dir = values.dir ?? SQL_DIR;
  const files = [...generatedSqlFiles(), ...sampleQueryFiles()];
  if (values.check) {
    const stale = await staleSqlFiles(dir, files);
    for (const s of stale) process.stderr.write(`stale: ${s.path} (${s.problem})\n`);
    if (stale.length > 0) process.stderr.write('run: node bin/run-ts.mjs scripts/generate-sql.ts\n');
    return stale.length === 0 ? 0 : 1;
  }
  for (const path of await writeSqlFiles(dir, files)) process.stderr.write(`wrote ${path}\n`);
  return 0;
}
