/**
 * The step's result as a run summary records it (`"privacy"`, src/jobs/privacyOutcome.ts, src/jobs/erase/nightly.ts): how many erase
 * receipts it re-applied that found something again, how many tenants it offboarded again, how many partitions
 * retention dropped, and `failure` when part of it could not be done; only `failure` when it never reported
 * (it timed out or crashed); `skipped` when it did not run (a retry of Azure's timer).
 */
export type PrivacyOutcome =
  | { readonly reapplied: number; readonly offboarded: number; readonly retention: number; readonly failure?: string }
  | { readonly failure: string }
  | { readonly skipped: string };
