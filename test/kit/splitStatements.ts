/**
 * Splits a SQL script into statements: at `;` and at T-SQL `GO` lines, outside quotes, [brackets],
 * "identifiers" and comments. Comment-only pieces are dropped. Athena runs one statement per query
 * and node-sql-parser is asked about one statement at a time, so both need this.
 */
export function splitStatements(script: string): string[] {
  const statements: string[] = [];
  let current = '';
  let i = 0;
  const flush = () => {
    if (stripComments(current).trim() !== '') statements.push(current.trim());
    current = '';
  };
  while (i < script.length) {
    const ch = script[i] as string;
    const rest = script.slice(i);
    if (rest.startsWith('--')) {
      const end = script.indexOf('\n', i);
      const stop = end === -1 ? script.length : end;
      current += script.slice(i, stop);
      i = stop;
    } else if (rest.startsWith('/*')) {
      const end = script.indexOf('*/', i + 2);
      const stop = end === -1 ? script.length : end + 2;
      current += script.slice(i, stop);
      i = stop;
    } else if (ch === "'" || ch === '"' || ch === '`' || ch === '[') {
      const close = ch === '[' ? ']' : ch;
      let j = i + 1;
      while (j < script.length) {
        if (script[j] === close) {
          if (script[j + 1] === close) j += 2;
          else break;
        } else j++;
      }
      current += script.slice(i, j + 1);
      i = j + 1;
    } else if (ch === ';') {
      flush();
      i++;
    } else if ((i === 0 || script[i - 1] === '\n') && /^GO[ \t]*(\r?\n|$)/i.test(rest)) {
      flush();
      i += /^GO[ \t]*/i.exec(rest)?.[0].length ?? 2;
    } else {
      current += ch;
      i++;
    }
  }
  flush();
  return statements;
}

/** The statement without its -- and block comments (for parsers and for deciding what is empty). */
export function stripComments(statement: string): string {
  return statement
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .split('\n')
    .map((line) => (line.trimStart().startsWith('--') ? '' : line))
    .join('\n')
    .trim();
}
