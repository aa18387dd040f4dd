// Entry point of the Functions app (package.json "main"). The project runs TypeScript through tsx (no
// build step, as the CLI does), so this registers tsx and imports one module per function; each module
// registers its function with `app.*` when it is imported. The worker awaits this module (top-level await).
import { register } from 'tsx/esm/api';

register();
await import('./functions/ingest_changefeed.ts');
await import('./functions/daily_batch.ts');
await import('./functions/intraday_batch.ts');
await import('./functions/compact_http.ts');
await import('./functions/compact_job.ts');
await import('./functions/compact_task.ts');
