/** The handlers' JSON log lines, `level: {json}` as the tests' invocation contexts record them; plain-text lines are left out. */
export function jsonLines(lines: readonly string[]): ({ level: string; message: string } & Record<string, unknown>)[] {
  return lines.flatMap((l) => {
    const at = l.indexOf(': ');
    return l.startsWith('{', at + 2) ? [{ level: l.slice(0, at), ...JSON.parse(l.slice(at + 2)) }] : [];
  });
}
