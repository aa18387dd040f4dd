#!/usr/bin/env node
// The CLI is TypeScript run through tsx, so `npm ci` is the only install step (no build).
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../compactor/cli.ts');
process.exitCode = await main(process.argv.slice(2), process.env);
