/** `node bin/run-ts.mjs bench/generate.ts DATA_DIR MESSAGES [TENANT] [DATE]`: a benchmark tenant-day in a local store. */
import { generateStaging } from '../tools/generateStaging.js';

export async function main(argv: string[]): Promise<number> {
  const [root, messages, tenant = 'bench', date = '2025-08-11'] = argv;
  if (!root || !messages) {
    console.error('usage: generate.ts DATA_DIR MESSAGES [TENANT] [DATE]');
    return 2;
  }
  const t0 = performance.now();
  const stats = await generateStaging({ root, tenant, date, messages: Number(messages) });
  console.log(JSON.stringify({ ...stats, ms: Math.round(performance.now() - t0) }));
  return 0;
}
