/**
 * Quoting for Athena. Its DDL is parsed by Hive (string escapes with a backslash) and its queries by
 * Trino (a quote is doubled), so a string literal is only emitted when both read it the same way:
 * values with a quote, a backslash or a line break are rejected instead of escaped.
 */
export function quoteAthenaIdent(name: string): string {
  if (!/^[A-Za-z0-9_]+$/.test(name))
    throw new TypeError(`Athena identifier ${JSON.stringify(name)} must be letters, digits or _`);
  return `\`${name}\``;
}

export function quoteAthenaString(value: string): string {
  if (/['\\\r\n\0]/.test(value)) {
    throw new TypeError(`Athena string ${JSON.stringify(value)} may not contain a quote, backslash or line break`);
  }
  return `'${value}'`;
}
