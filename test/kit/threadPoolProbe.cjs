// Preloaded into a process (`node --require`): when it is about to exit, prints whether libuv's thread pool has
// more than six threads. Six opens of FIFOs no one writes to hold six of its threads; a stat that still
// completes ran on another one. (Nothing async runs before then, so the probe does not size the pool itself.)
const fs = require('node:fs');
const { join } = require('node:path');
const { tmpdir } = require('node:os');
const { execFileSync } = require('node:child_process');

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
let probed = false;
process.on('beforeExit', async () => {
  if (probed) return;
  probed = true;
  const dir = fs.mkdtempSync(join(tmpdir(), 'makoto-lake-pool-'));
  const fifos = Array.from({ length: 6 }, (_, i) => join(dir, `f${i}`));
  for (const fifo of fifos) execFileSync('mkfifo', [fifo]);
  const readers = fifos.map((fifo) => fs.promises.open(fifo, 'r'));
  await sleep(100);
  const free = await Promise.race([fs.promises.stat(dir).then(() => true), sleep(1000).then(() => false)]);
  // opened read-write a FIFO has a writer (Linux never blocks this open): every waiting or queued open completes
  const writers = fifos.map((fifo) => fs.openSync(fifo, fs.constants.O_RDWR));
  for (const handle of await Promise.all(readers)) await handle.close();
  for (const fd of writers) fs.closeSync(fd);
  fs.rmSync(dir, { recursive: true, force: true });
  process.stdout.write(`thread pool above 6: ${free}\n`);
});
