/**
 * The Polars peer: what a user choosing nodejs-polars would write for the same compaction — scan the
 * staging NDJSON.gz, sort by message and latest-first order, keep the first row per message, drop
 * deletes, write one snappy Parquet file. Same order rule as LATEST_FIRST_SQL (length, then digits, then
 * first ingestion, then file name); no validation, counts or manifest. nodejs-polars is not a dependency
 * of the product: `ensurePolars` installs it into bench/.peers on first use (gitignored).
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';

export const POLARS_VERSION = '0.25.2';
const PEERS_DIR = join(import.meta.dirname, '.peers');
const PACKAGES = [`nodejs-polars@${POLARS_VERSION}`, `nodejs-polars-linux-x64-gnu@${POLARS_VERSION}`];

/** Installs nodejs-polars (and its native package, which npm does not pick up by itself on Node 20) once. */
export async function ensurePolars(): Promise<string> {
  if (!existsSync(join(PEERS_DIR, 'node_modules', 'nodejs-polars', 'package.json'))) {
    await mkdir(PEERS_DIR, { recursive: true });
    await writeFile(join(PEERS_DIR, 'package.json'), '{ "private": true }\n');
    execFileSync('npm', ['install', '--prefix', PEERS_DIR, '--no-save', '--ignore-scripts', ...PACKAGES], { stdio: 'inherit' });
  }
  return PEERS_DIR;
}

// biome-ignore lint/suspicious/noExplicitAny: nodejs-polars is loaded at run time from bench/.peers, untyped here
type Polars = any;

export async function polarsConvert(stagingDir: string, outFile: string) {
  const pl: Polars = createRequire(join(PEERS_DIR, 'package.json'))('nodejs-polars');
  const files = (await readdir(stagingDir)).filter((f) => f.endsWith('.ndjson.gz')).sort();
  const schema = {
    tenant_id: pl.Utf8,
    dt: pl.Utf8,
    message_id: pl.Utf8,
    conversation_id: pl.Utf8,
    sender_id: pl.Utf8,
    role: pl.Utf8,
    content: pl.Utf8,
    created_at: pl.Int64,
    updated_at: pl.Int64,
    attributes: pl.Utf8,
    source: pl.Utf8,
    source_seq: pl.Utf8,
    ingested_at: pl.Int64,
    op: pl.Utf8,
  };
  const t0 = performance.now();
  const ms = (c: string) => pl.col(c).cast(pl.Datetime('ms')).alias(c);
  const frame = pl
    .scanJson(join(stagingDir, '*.ndjson.gz'), { schema, includeFilePaths: 'filename' })
    .withColumns(pl.col('source_seq').str.lengths().alias('seq_length'))
    .sort(['message_id', 'seq_length', 'source_seq', 'ingested_at', 'filename'], [false, true, true, false, false])
    .unique({ subset: ['message_id'], keep: 'first', maintainOrder: true })
    .filter(pl.col('op').neq(pl.lit('delete')))
    .select(
      'message_id',
      'conversation_id',
      'sender_id',
      'role',
      'content',
      ms('created_at'),
      ms('updated_at'),
      'attributes',
      'source',
      'source_seq',
      ms('ingested_at'),
    )
    .collectSync();
  const computed = performance.now();
  frame.writeParquet(outFile, { compression: 'snappy' });
  const written = performance.now();
  return {
    files: files.length,
    rowsWritten: frame.height as number,
    bytesWritten: (await stat(outFile)).size,
    timings: { compute: Math.round(computed - t0), write: Math.round(written - computed) },
  };
}
