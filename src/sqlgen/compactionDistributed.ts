/**
 * The compaction of one tenant-day as statements for a distributed engine, for days past one machine
 * (docs/SCALING.md): Athena CTAS over a staging external table, Synapse serverless CETAS over OPENROWSET.
 *
 * Nothing here restates the rules. The validity rules (REJECT_REASON_SQL), the version order
 * (LATEST_FIRST_SQL) and the classification (classifiedRowsSql) are imported from the DuckDB engine and
 * translated by a short list of rewrites; each rewrite must find what it expects, so a change to the
 * engine's SQL that these rewrites do not cover fails loudly here instead of producing different rows.
 * test/perf/compactionDistributed.test.ts runs the output on DuckDB against compactPartition.
 */
import { classifiedRowsSql, REJECT_REASON_SQL } from '../compaction/compactionSql.js';
import { ROW_KINDS } from '../compaction/tally.js';
import { MakotoLakeError } from '../errors.js';
import { MESSAGE_COLUMNS, STAGING_COLUMNS } from '../schema/messageSchema.js';
import { quoteAthenaIdent, quoteAthenaString } from '../sql/athenaQuote.js';
import { quoteTsqlIdent, quoteTsqlLiteral } from '../sql/tsqlQuote.js';
import { STAGING_ROOT, stagingPrefix } from '../staging/layout.js';
import { assertTenantId } from '../tenant.js';
import { jstDayRange, parseDate } from '../time/jst.js';
import { ATHENA_NAMES, SYNAPSE_NAMES } from './sqlNames.js';
import { SYNAPSE_COLLATION } from './synapseDdl.js';

/** The engine's SQL changed in a way the translation does not cover. */
export class DistributedSqlError extends MakotoLakeError {}

export type DistributedDialect = 'athena' | 'synapse';

/** Staging table (Athena) and its partition columns: named apart from the tenant_id/dt fields of each line. */
export const ATHENA_STAGING_TABLE = 'staging_messages';
export const STAGING_PARTITION_COLUMNS = { tenant: 'staging_tenant', date: 'staging_dt' } as const;
/** Where CTAS/CETAS write a run's files; the commit step moves them into the partition (docs/SCALING.md). */
export const DISTRIBUTED_OUTPUT_ROOT = 'compaction-out/messages/';

const CURRENT = ROW_KINDS.indexOf('current');
const PLAIN_NAME = /^[a-z_][a-z0-9_]*$/;

/** One rewrite of the engine's SQL text; `expect` times it must apply (a drift guard). */
interface Rewrite {
  readonly what: string;
  readonly pattern: RegExp;
  readonly replace: (match: string, ...groups: string[]) => string;
  readonly expect: 'some' | 'any';
}

function rewrite(sql: string, rules: readonly Rewrite[]): string {
  let out = sql;
  for (const rule of rules) {
    let hits = 0;
    out = out.replace(rule.pattern, (match: string, ...groups: string[]) => {
      hits++;
      return rule.replace(match, ...groups);
    });
    if (rule.expect === 'some' && hits === 0) {
      throw new DistributedSqlError(
        `compactionSql.ts no longer contains ${rule.what}: update src/sqlgen/compactionDistributed.ts`,
      );
    }
  }
  return out;
}

/** The partition's bound parameters as literals (tenant ids and dates are validated first). */
function parameterRules(dialect: DistributedDialect, tenant: string, date: string): Rewrite[] {
  const { startMs, endMs } = jstDayRange(date);
  const text = dialect === 'athena' ? quoteAthenaString : quoteTsqlLiteral;
  return [
    { what: '$tenant', pattern: /\$tenant\b/g, replace: () => text(tenant), expect: 'some' },
    { what: '$date', pattern: /\$date\b/g, replace: () => text(date), expect: 'some' },
    { what: '$day_start', pattern: /\$day_start\b/g, replace: () => String(startMs), expect: 'some' },
    { what: '$day_end', pattern: /\$day_end\b/g, replace: () => String(endMs), expect: 'some' },
  ];
}

const FULL_MATCH = /regexp_full_match\((\w+), '([^']*)'\)/g;

/** REJECT_REASON_SQL in the dialect. */
export function rejectReasonSql(dialect: DistributedDialect, tenant: string, date: string): string {
  const rules: Rewrite[] = [...parameterRules(dialect, tenant, date)];
  if (dialect === 'athena') {
    // Trino's regexp_like finds a match anywhere: anchor it to keep DuckDB's full-match meaning.
    rules.push({
      what: 'regexp_full_match',
      pattern: FULL_MATCH,
      replace: (_m, col, re) => `regexp_like(${col}, '^(${re})$')`,
      expect: 'some',
    });
  } else {
    rules.push(
      {
        what: 'regexp_full_match',
        pattern: FULL_MATCH,
        replace: (_m, col, re) => {
          // T-SQL has no regular expressions; only "1 to n digits" is needed and is spelled with LEN and LIKE.
          const digits = /^\[0-9\]\{(\d+),(\d+)\}$/.exec(re ?? '');
          if (!digits) throw new DistributedSqlError(`no T-SQL translation for the pattern ${re}`);
          return `(LEN(${col}) BETWEEN ${digits[1]} AND ${digits[2]} AND ${col} NOT LIKE '%[^0-9]%')`;
        },
        expect: 'some',
      },
      // The serverless pool has no IS DISTINCT FROM; the right side is always a non-null literal here.
      {
        what: 'IS DISTINCT FROM',
        pattern: /(\w+) IS DISTINCT FROM ('[^']*')/g,
        replace: (_m, col, lit) => `(${col} IS NULL OR ${col} <> ${lit})`,
        expect: 'some',
      },
      // String concatenation: || → CONCAT(...) (each operand is a literal or a coalesce(...) without ||).
      {
        what: '||',
        pattern: /THEN (.+? \|\| .+?)$/gm,
        replace: (_m, expr) => `THEN CONCAT(${(expr ?? '').split(' || ').join(', ')})`,
        expect: 'some',
      },
    );
  }
  const out = rewrite(REJECT_REASON_SQL, rules);
  assertTranslated(out, dialect);
  return out;
}

/** Anything DuckDB-only left over means the engine grew a construct this module does not translate. */
function assertTranslated(sql: string, dialect: DistributedDialect): void {
  const leftovers = [/\$(?!path")\w+/, /regexp_full_match/, /\bQUALIFY\b/i, /\bWINDOW \w+ AS\b/];
  if (dialect === 'synapse') leftovers.push(/\|\|/, /IS DISTINCT FROM/, /\blength\(/);
  const found = leftovers.find((re) => re.test(sql));
  if (found) throw new DistributedSqlError(`untranslated ${found} in the ${dialect} compaction SQL`);
}

/** classifiedRowsSql with its named window inlined (neither Athena nor the serverless pool has WINDOW). */
export function classifiedSql(dialect: DistributedDialect, relation: string): string {
  const engine = classifiedRowsSql(relation);
  const named = /\n\s*WINDOW (\w+) AS \((.*)\)\s*\n/.exec(engine);
  if (!named) throw new DistributedSqlError('classifiedRowsSql no longer defines a named window');
  const [line, name, spec] = named as unknown as [string, string, string];
  let window = spec;
  if (dialect === 'synapse') {
    window = rewrite(window, [
      // T-SQL cannot partition by a boolean expression.
      {
        what: 'PARTITION BY reject_reason IS NULL',
        pattern: /PARTITION BY reject_reason IS NULL,/g,
        replace: () => 'PARTITION BY CASE WHEN reject_reason IS NULL THEN 1 ELSE 0 END,',
        expect: 'some',
      },
      { what: 'length(', pattern: /\blength\(/g, replace: () => 'LEN(', expect: 'some' },
    ]);
  }
  const out = rewrite(engine.replace(line, '\n'), [
    { what: `OVER ${name}`, pattern: new RegExp(`OVER ${name}\\b`, 'g'), replace: () => `OVER (${window})`, expect: 'some' },
    // Derived tables need an alias in T-SQL (harmless elsewhere).
    {
      what: 'the closing subquery',
      pattern: /\n(\s*)\)\s*$/,
      replace: (_m, indent) => `\n${indent}) AS versions`,
      expect: 'some',
    },
  ]);
  assertTranslated(out, dialect);
  return out;
}

/** The Parquet projection: epoch milliseconds to a millisecond timestamp, text as is. */
function projectionSql(dialect: DistributedDialect): string {
  return MESSAGE_COLUMNS.map((c) => {
    if (!PLAIN_NAME.test(c.name)) throw new DistributedSqlError(`column ${c.name} needs quoting`);
    if (c.parquet !== 'TIMESTAMP_MS') return c.name;
    return dialect === 'athena'
      ? `CAST(from_unixtime_nanos(${c.name} * 1000000) AS timestamp(3)) AS ${c.name}`
      : // DATEADD takes an int: whole days, then the milliseconds of the day.
        `DATEADD(millisecond, ${c.name} % 86400000, DATEADD(day, ${c.name} / 86400000, CAST('1970-01-01' AS datetime2(3)))) AS ${c.name}`;
  }).join(',\n    ');
}

/** The staging lines of one partition with the name of the object each came from (`filename`). */
export function stagingSourceSql(dialect: DistributedDialect, tenant: string, date: string): string {
  const columns = STAGING_COLUMNS.map((c) => c.name);
  if (dialect === 'athena') {
    const table = `${ATHENA_NAMES.database}.${ATHENA_STAGING_TABLE}`;
    return `SELECT ${columns.join(', ')}, "$path" AS filename
    FROM ${table}
    WHERE ${STAGING_PARTITION_COLUMNS.tenant} = ${quoteAthenaString(tenant)} AND ${STAGING_PARTITION_COLUMNS.date} = ${quoteAthenaString(date)}`;
  }
  const typeOf = (c: (typeof STAGING_COLUMNS)[number]) =>
    c.staging === 'BIGINT'
      ? 'bigint'
      : (MESSAGE_COLUMNS.find((m) => m.name === c.name)?.synapse ?? `varchar(64) COLLATE ${SYNAPSE_COLLATION}`);
  const withColumns = STAGING_COLUMNS.map((c) => `${quoteTsqlIdent(c.name)} ${typeOf(c)} '$.${c.name}'`).join(',\n        ');
  // One NDJSON line per row: a CSV read whose field and quote characters never occur in JSON text.
  return `SELECT j.*, r.filepath() AS filename
    FROM OPENROWSET(
        BULK ${quoteTsqlLiteral(`${stagingPrefix(tenant, date)}*.ndjson.gz`)},
        DATA_SOURCE = ${quoteTsqlLiteral(SYNAPSE_NAMES.dataSource)},
        FORMAT = 'CSV', FIELDTERMINATOR = '0x0b', FIELDQUOTE = '0x0b', ROWTERMINATOR = '0x0a'
      ) WITH (line nvarchar(max)) AS r
    CROSS APPLY OPENJSON(r.line) WITH (
        ${withColumns}
      ) AS j`;
}

/** Every classified row of the partition (`row_kind` indexes ROW_KINDS). */
function classifiedRowsFor(dialect: DistributedDialect, tenant: string, date: string): string {
  const staged = `(SELECT *, ${rejectReasonSql(dialect, tenant, date)} AS reject_reason
    FROM (${stagingSourceSql(dialect, tenant, date)}) AS source) AS staged`;
  return classifiedSql(dialect, staged);
}

/** The rows the partition's Parquet must hold: the same rows compactPartition writes. */
export function distributedSelectSql(dialect: DistributedDialect, tenantInput: string, dateInput: string): string {
  const tenant = assertTenantId(tenantInput);
  const date = parseDate(dateInput);
  return `SELECT ${projectionSql(dialect)}
FROM (${classifiedRowsFor(dialect, tenant, date)}) AS classified
WHERE row_kind = ${CURRENT}`;
}

/** How many rows of each kind (for the manifest): a second pass, as the engines have no tally UDF. */
export function distributedCountsSql(dialect: DistributedDialect, tenantInput: string, dateInput: string): string {
  const tenant = assertTenantId(tenantInput);
  const date = parseDate(dateInput);
  return `SELECT row_kind, COUNT(*) AS row_count
FROM (${classifiedRowsFor(dialect, tenant, date)}) AS classified
GROUP BY row_kind`;
}

/** The run's output folder (relative to the bucket or container root). */
export function distributedOutputPrefix(tenant: string, date: string, runId: string): string {
  if (!/^[A-Za-z0-9-]{1,64}$/.test(runId))
    throw new DistributedSqlError(`run id ${JSON.stringify(runId)} must be letters, digits and -`);
  return `${DISTRIBUTED_OUTPUT_ROOT}tenant_id=${assertTenantId(tenant)}/dt=${parseDate(date)}/run=${runId}/`;
}

const tableName = (tenant: string, date: string, runId: string) =>
  `compaction_${tenant}_${date}_${runId}`.toLowerCase().replace(/[^a-z0-9_]/g, '_');

/**
 * Athena: CTAS writing the partition's current rows as snappy Parquet into the run's own folder. Drop the
 * table afterwards (DROP TABLE keeps the files); the commit step then switches the partition to them.
 *
 * @example
 * athenaCompactionCtasSql('acme', '2025-08-11', '20250812T020000Z-1a2b3c4d')
 */
export function athenaCompactionCtasSql(tenant: string, date: string, runId: string): string {
  const location = `s3://\${S3_BUCKET_NAME}/${distributedOutputPrefix(tenant, date, runId)}`;
  return `CREATE TABLE ${quoteAthenaIdent(ATHENA_NAMES.database)}.${quoteAthenaIdent(tableName(tenant, date, runId))}
WITH (format = 'PARQUET', write_compression = 'SNAPPY', external_location = ${quoteAthenaString(location)})
AS ${distributedSelectSql('athena', tenant, date)}`;
}

/** Athena DDL of the staging table: gzip NDJSON read by the OpenX JSON SerDe, partitions projected from the path. */
export function athenaStagingTableSql(): string {
  const type = (staging: string) => (staging === 'BIGINT' ? 'bigint' : 'string');
  const columns = STAGING_COLUMNS.map((c) => `  ${quoteAthenaIdent(c.name)} ${type(c.staging)}`).join(',\n');
  const { tenant, date } = STAGING_PARTITION_COLUMNS;
  const template = `s3://\${S3_BUCKET_NAME}/${STAGING_ROOT}tenant_id=\${${tenant}}/dt=\${${date}}/`;
  return `CREATE EXTERNAL TABLE IF NOT EXISTS ${quoteAthenaIdent(ATHENA_NAMES.database)}.${quoteAthenaIdent(ATHENA_STAGING_TABLE)} (
${columns}
)
PARTITIONED BY (${quoteAthenaIdent(tenant)} string, ${quoteAthenaIdent(date)} string)
ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'
WITH SERDEPROPERTIES ('ignore.malformed.json' = 'true')
LOCATION ${quoteAthenaString(`s3://\${S3_BUCKET_NAME}/${STAGING_ROOT}`)}
TBLPROPERTIES (
  'projection.enabled' = 'true',
  'projection.${tenant}.type' = 'injected',
  'projection.${date}.type' = 'date',
  'projection.${date}.format' = 'yyyy-MM-dd',
  'projection.${date}.range' = '${ATHENA_NAMES.projectionRange}',
  'storage.location.template' = ${quoteAthenaString(template)}
)`;
}

/** Synapse serverless: CETAS writing the partition's current rows as Parquet into the run's own folder. */
export function synapseCompactionCetasSql(tenant: string, date: string, runId: string): string {
  return `CREATE EXTERNAL TABLE ${quoteTsqlIdent(SYNAPSE_NAMES.schema)}.${quoteTsqlIdent(tableName(tenant, date, runId))}
WITH (
    LOCATION = ${quoteTsqlLiteral(distributedOutputPrefix(tenant, date, runId))},
    DATA_SOURCE = ${quoteTsqlIdent(SYNAPSE_NAMES.dataSource)},
    FILE_FORMAT = ${quoteTsqlIdent(SYNAPSE_NAMES.fileFormat)}
)
AS ${distributedSelectSql('synapse', tenant, date)};`;
}
