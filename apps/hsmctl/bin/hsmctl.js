#!/usr/bin/env node
// The `hsmctl` command (`npx hsmctl`): a committed, executable entry point, so
// the workspace bin works on a fresh clone even though dist/ is built later
// and tsc writes files without the execute bit.
import { existsSync } from 'node:fs';

const main = new URL('../dist/main.js', import.meta.url);
if (!existsSync(main)) {
  process.stderr.write('hsmctl: apps/hsmctl/dist/main.js is not built yet; run `npm start` (or `npm run build`) first\n');
  process.exit(2);
}
await import(main.href);
