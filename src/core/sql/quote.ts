/**
 * The one place SQL text is built from values. Identifiers and literals are escaped by doubling the
 * quote character; values that DuckDB can bind as parameters are bound instead (see compaction).
 */
export function quoteIdent(name: string): string {
  if (name.includes('\0')) throw new TypeError('SQL identifier contains a NUL byte');
  return `"${name.replaceAll('"', '""')}"`;
}

export function quoteLiteral(value: string): string {
  if (value.includes('\0')) throw new TypeError('SQL literal contains a NUL byte');
  return `'${value.replaceAll("'", "''")}'`;
}

/** A DuckDB list literal of strings: ['a', 'b']. */
export function quoteStringList(values: readonly string[]): string {
  return `[${values.map(quoteLiteral).join(', ')}]`;
}
