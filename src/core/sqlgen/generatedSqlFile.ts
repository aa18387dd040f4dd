/** One generated file under sql/: its path relative to sql/ and its exact text. */
export interface GeneratedSqlFile {
  readonly path: string;
  readonly text: string;
}
