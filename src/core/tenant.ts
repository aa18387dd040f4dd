import { InvalidTenantError } from './errors.js';

/** Letters, digits, '-' and '_', 1 to 64 characters: safe in a path, an object key and a SQL literal. */
export const TENANT_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

/** Why `value` is not a valid tenant id, or undefined when it is. */
export function tenantIdProblem(value: unknown): string | undefined {
  if (typeof value !== 'string') return `tenant id must be a string, got ${value === null ? 'null' : typeof value}`;
  if (value.length === 0) return 'tenant id is empty';
  if (value.length > 64) return `tenant id is ${value.length} characters long (at most 64)`;
  if (!TENANT_ID_PATTERN.test(value)) {
    return `tenant id ${JSON.stringify(value)} may contain only letters, digits, '-' and '_'`;
  }
  return undefined;
}

export function assertTenantId(value: unknown): string {
  const problem = tenantIdProblem(value);
  if (problem) throw new InvalidTenantError(problem, { context: { tenant: value } });
  return value as string;
}
