/**
 * The sample queries, defined once and written in both dialects: sql/athena/1x_*.sql (Trino SQL) and
 * sql/synapse/1x_*.sql (T-SQL). Each query is a template over the few places the dialects differ (the
 * table name, millisecond differences, average as a fraction, character length, JSON scalars, the JST hour,
 * LIMIT/TOP); everything else is the same text. scripts/generate-sql.ts writes them beside the DDL.
 */
import type { GeneratedSqlFile } from './generatedSqlFile.js';
import type { SqlTarget } from './placeholders.js';
import { ATHENA_NAMES, SYNAPSE_NAMES } from './sqlNames.js';

/** What differs between the dialects, as SQL fragments. */
export interface SampleDialect {
  readonly target: SqlTarget;
  /** The messages table (Athena) or view (Synapse). */
  readonly messages: string;
  /** Milliseconds from `from` to `to`. */
  msBetween(from: string, to: string): string;
  /** Average with a fractional result (T-SQL's AVG of integers is an integer). */
  average(expr: string): string;
  /** Length in characters. */
  chars(expr: string): string;
  /** A scalar at a JSON path, as text. */
  jsonScalar(json: string, path: string): string;
  /** Hour of the JST day of a UTC timestamp (JST = UTC+9, no daylight saving time). */
  jstHour(timestamp: string): string;
  /** `SELECT` of a query returning at most `n` rows, and the clause that ends it. */
  selectAtMost(n: number): { select: string; end: string };
}

export const SAMPLE_DIALECTS: Readonly<Record<SqlTarget, SampleDialect>> = {
  athena: {
    target: 'athena',
    messages: `${ATHENA_NAMES.database}.${ATHENA_NAMES.table}`,
    msBetween: (from, to) => `date_diff('millisecond', ${from}, ${to})`,
    average: (expr) => `AVG(${expr})`,
    chars: (expr) => `length(${expr})`,
    jsonScalar: (json, path) => `json_extract_scalar(${json}, '${path}')`,
    jstHour: (timestamp) => `hour(${timestamp} + INTERVAL '9' HOUR)`,
    selectAtMost: (n) => ({ select: 'SELECT', end: `\nLIMIT ${n}` }),
  },
  synapse: {
    target: 'synapse',
    messages: `${SYNAPSE_NAMES.schema}.${SYNAPSE_NAMES.view}`,
    msBetween: (from, to) => `DATEDIFF_BIG(millisecond, ${from}, ${to})`,
    average: (expr) => `AVG(CAST(${expr} AS float))`,
    chars: (expr) => `LEN(${expr})`,
    jsonScalar: (json, path) => `JSON_VALUE(${json}, '${path}')`,
    jstHour: (timestamp) => `DATEPART(hour, DATEADD(hour, 9, ${timestamp}))`,
    selectAtMost: (n) => ({ select: `SELECT TOP ${n}`, end: '' }),
  },
};

export interface SampleQuery {
  readonly file: string;
  /** What the query answers (comment lines of both files). */
  readonly about: readonly string[];
  /** Comment lines for one dialect only. */
  readonly notes?: Partial<Record<SqlTarget, readonly string[]>>;
  readonly sql: (d: SampleDialect) => string;
}

const ONE_TENANT = `WHERE tenant_id = 'default_tenant'
  AND dt BETWEEN '2025-08-10' AND '2025-08-11'`;

export const SAMPLE_QUERIES: readonly SampleQuery[] = [
  {
    file: '10_messages_per_day_per_tenant.sql',
    about: ['Messages per JST day for each tenant.'],
    notes: {
      athena: ['Filtering on tenant_id and dt reads only those partitions (the Delta log lists their files).'],
      synapse: [
        `Run in database ${SYNAPSE_NAMES.database} (03_create_view_messages.sql). Filtering on tenant_id and dt reads`,
        'only those partitions (their files, from the Delta log).',
      ],
    },
    sql: (d) => `SELECT tenant_id, dt, COUNT(*) AS messages
FROM ${d.messages}
WHERE tenant_id IN ('default_tenant', 'fuji-bank')
  AND dt BETWEEN '2025-08-10' AND '2025-08-11'
GROUP BY tenant_id, dt
ORDER BY tenant_id, dt;`,
  },
  {
    file: '11_messages_per_role.sql',
    about: ['Messages per JST day and role for one tenant.'],
    sql: (d) => `SELECT dt, role, COUNT(*) AS messages
FROM ${d.messages}
${ONE_TENANT}
GROUP BY dt, role
ORDER BY dt, role;`,
  },
  {
    file: '12_active_conversations.sql',
    about: [
      'Active conversations per JST day: conversations with at least one message that day, and those of',
      'them in which both the user and the assistant wrote that day.',
    ],
    sql: (d) => `WITH per_conversation AS (
  SELECT dt, conversation_id,
         SUM(CASE WHEN role = 'user' THEN 1 ELSE 0 END) AS user_messages,
         SUM(CASE WHEN role = 'assistant' THEN 1 ELSE 0 END) AS assistant_messages
  FROM ${d.messages}
  ${ONE_TENANT.replace('\n', '\n  ')}
  GROUP BY dt, conversation_id
)
SELECT dt,
       COUNT(*) AS active_conversations,
       SUM(CASE WHEN user_messages > 0 AND assistant_messages > 0 THEN 1 ELSE 0 END) AS conversations_with_reply
FROM per_conversation
GROUP BY dt
ORDER BY dt;`,
  },
  {
    file: '13_response_time.sql',
    about: [
      'Response time: for each user message, the milliseconds until the next assistant message in the same',
      'conversation (other roles in between are skipped), per JST day of the user message. A reply after',
      'the last dt of the range is not seen: widen the range by a day to catch replies after midnight.',
    ],
    sql: (d) => {
      const wait = d.msBetween('created_at', 'next_assistant_at');
      return `WITH ordered AS (
  SELECT dt, conversation_id, message_id, role, created_at,
         MIN(CASE WHEN role = 'assistant' THEN created_at END) OVER (
           PARTITION BY conversation_id
           ORDER BY created_at, message_id
           ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING
         ) AS next_assistant_at
  FROM ${d.messages}
  ${ONE_TENANT.replace('\n', '\n  ')}
)
SELECT dt,
       COUNT(*) AS user_messages,
       COUNT(next_assistant_at) AS answered,
       ${d.average(wait)} AS avg_response_ms,
       MIN(${wait}) AS min_response_ms,
       MAX(${wait}) AS max_response_ms
FROM ordered
WHERE role = 'user'
GROUP BY dt
ORDER BY dt;`;
    },
  },
  {
    file: '14_content_length_distribution.sql',
    about: ['Distribution of message length in characters, over a date range.'],
    notes: {
      athena: ['length() counts Unicode code points, so Japanese text and emoji count one each.'],
      synapse: [
        'LEN() ignores trailing spaces, and characters outside the BMP (most emoji) may not count as one',
        "as they do in Athena's length().",
      ],
    },
    sql: (d) => `WITH lengths AS (
  SELECT ${d.chars('content')} AS chars
  FROM ${d.messages}
  ${ONE_TENANT.replace('\n', '\n  ')}
),
buckets AS (
  SELECT chars,
         CASE
           WHEN chars IS NULL THEN 0
           WHEN chars < 10 THEN 1
           WHEN chars < 20 THEN 2
           WHEN chars < 50 THEN 3
           WHEN chars < 100 THEN 4
           WHEN chars < 500 THEN 5
           ELSE 6
         END AS bucket_order
  FROM lengths
)
SELECT bucket_order,
       CASE bucket_order
         WHEN 0 THEN 'no content'
         WHEN 1 THEN '0-9'
         WHEN 2 THEN '10-19'
         WHEN 3 THEN '20-49'
         WHEN 4 THEN '50-99'
         WHEN 5 THEN '100-499'
         ELSE '500+'
       END AS length_bucket,
       COUNT(*) AS messages,
       MIN(chars) AS min_chars,
       MAX(chars) AS max_chars
FROM buckets
GROUP BY bucket_order
ORDER BY bucket_order;`,
  },
  {
    file: '15_daily_active_senders.sql',
    about: [
      'Daily active senders: distinct users who wrote at least one message that JST day, and every',
      'distinct sender (assistants included).',
    ],
    sql: (d) => `SELECT dt,
       COUNT(DISTINCT CASE WHEN role = 'user' THEN sender_id END) AS active_users,
       COUNT(DISTINCT sender_id) AS active_senders
FROM ${d.messages}
${ONE_TENANT}
GROUP BY dt
ORDER BY dt;`,
  },
  {
    file: '16_attributes_model_usage.sql',
    about: ['Reading attributes (JSON text of every other item field): assistant messages and tokens per model.'],
    sql: (d) => `SELECT ${d.jsonScalar('attributes', '$.model')} AS model,
       COUNT(*) AS messages,
       SUM(CAST(${d.jsonScalar('attributes', '$.tokens')} AS bigint)) AS tokens
FROM ${d.messages}
${ONE_TENANT}
  AND role = 'assistant'
GROUP BY ${d.jsonScalar('attributes', '$.model')}
ORDER BY model;`,
  },
  {
    file: '17_messages_per_hour_jst.sql',
    about: [
      'Messages per hour of the JST day. created_at is UTC; Japan has no daylight saving time, so JST is',
      'always created_at + 9 hours.',
    ],
    sql: (d) => `SELECT ${d.jstHour('created_at')} AS jst_hour, COUNT(*) AS messages
FROM ${d.messages}
WHERE tenant_id = 'default_tenant'
  AND dt = '2025-08-10'
GROUP BY ${d.jstHour('created_at')}
ORDER BY jst_hour;`,
  },
  {
    file: '18_one_tenant_day.sql',
    about: [
      "One tenant's day, in order. Only the partition tenant_id=default_tenant/dt=2025-08-11 is read: the files",
      "the table's Delta log names for it (its folder may also hold replaced parts, which are not read).",
    ],
    sql: (d) => {
      const { select, end } = d.selectAtMost(1000);
      return `${select} message_id, conversation_id, sender_id, role, content, created_at
FROM ${d.messages}
WHERE tenant_id = 'default_tenant'
  AND dt = '2025-08-11'
ORDER BY created_at, message_id${end};`;
    },
  },
];

const HEADER =
  '-- GENERATED from src/core/sqlgen/sampleQueries.ts (one definition, Athena and Synapse) by scripts/generate-sql.ts: do not edit.';

/** The sample query files of one target, or of both. */
export function sampleQueryFiles(target?: SqlTarget): GeneratedSqlFile[] {
  const targets: readonly SqlTarget[] = target ? [target] : ['athena', 'synapse'];
  return targets.flatMap((t) =>
    SAMPLE_QUERIES.map((q) => {
      const comments = [...q.about, ...(q.notes?.[t] ?? [])].map((l) => `-- ${l}`);
      return { path: `${t}/${q.file}`, text: [HEADER, ...comments, q.sql(SAMPLE_DIALECTS[t]), ''].join('\n') };
    }),
  );
}
