/** Quoting for T-SQL (Synapse serverless): [identifiers] with `]` doubled, 'literals' with `'` doubled. */
export function quoteTsqlIdent(name: string): string {
  if (name.includes('\0')) throw new TypeError('T-SQL identifier contains a NUL byte');
  return `[${name.replaceAll(']', ']]')}]`;
}

export function quoteTsqlLiteral(value: string): string {
  if (value.includes('\0')) throw new TypeError('T-SQL literal contains a NUL byte');
  return `'${value.replaceAll("'", "''")}'`;
}
