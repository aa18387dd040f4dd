import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gunzipMembers, salvageStagingObject } from '../../src/engine/salvage.js';
import { tempDir } from '../kit/tempDir.js';

let dir: Awaited<ReturnType<typeof tempDir>>;
beforeAll(async () => {
  dir = await tempDir();
});
afterAll(() => dir.cleanup());

const KEY = 'staging/messages/tenant_id=t/dt=2025-08-11/obj.ndjson.gz';
const line = (id: string, content = 'x') => JSON.stringify({ message_id: id, content });

async function salvage(name: string, body: Buffer) {
  const path = join(dir.path, name);
  await writeFile(path, body);
  const result = await salvageStagingObject(path, KEY);
  return { good: result.good.map((l) => [l.line, l.text]), rejected: result.rejected };
}

describe('salvaging a staging object DuckDB refused', () => {
  it('refuses a line that is not UTF-8, naming the line and byte, instead of reading U+FFFD into it', async () => {
    const bad = Buffer.concat([Buffer.from('{"message_id":"m2","content":"b'), Buffer.from([0xff, 0xfe]), Buffer.from('ad"}')]);
    const body = gzipSync(Buffer.concat([Buffer.from(`${line('m1')}\n`), bad, Buffer.from(`\n${line('m3')}\n`)]));
    expect(await salvage('utf8', body)).toStrictEqual({
      good: [
        [1, line('m1')],
        [3, line('m3')],
      ],
      rejected: [
        {
          reason: 'not valid UTF-8 (byte 32 of the line)',
          object_key: KEY,
          line: 2,
          raw: '{"message_id":"m2","content":"b\uFFFD\uFFFDad"}',
        },
      ],
    });
  });

  it('reads past a byte order mark and CR LF line ends', async () => {
    const body = gzipSync(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(`${line('m1')}\r\n${line('m2')}\r\n`)]));
    expect(await salvage('bom', body)).toStrictEqual({
      good: [
        [1, line('m1')],
        [2, line('m2')],
      ],
      rejected: [],
    });
  });

  it('keeps the lines before junk after the gzip data, and names the junk', async () => {
    const body = Buffer.concat([gzipSync(`${line('m1')}\n`), gzipSync(`${line('m2')}\n`), Buffer.from('x')]);
    expect(await salvage('junk', body)).toStrictEqual({
      good: [
        [1, line('m1')],
        [2, line('m2')],
      ],
      rejected: [{ reason: '1 byte after the gzip data are not gzip (the 2 lines before them were read)', object_key: KEY }],
    });
  });

  it('keeps the complete lines of a member cut short or damaged, and says the gzip is unreadable', async () => {
    const text = Array.from({ length: 2000 }, (_, i) => `${line(`m${i}`, `content ${i * 7919}`)}\n`).join('');
    const whole = gzipSync(text);
    const cut = await salvage('cut', whole.subarray(0, Math.floor(whole.length / 2)));
    const keptCut = cut.good.length;
    expect(keptCut).toBeGreaterThan(100);
    expect(cut.good.slice(0, 2)).toStrictEqual([
      [1, line('m0', 'content 0')],
      [2, line('m1', 'content 7919')],
    ]);
    expect(cut.rejected).toStrictEqual([
      { reason: `unreadable gzip after ${keptCut} complete lines: unexpected end of file`, object_key: KEY },
    ]);
    // a flipped bit in the trailer's checksum: the data was read, but it is not the data that was written
    const crc = Buffer.from(whole);
    crc[crc.length - 8] = (crc[crc.length - 8] as number) ^ 1;
    expect((await salvage('crc', crc)).rejected).toStrictEqual([
      { reason: 'unreadable gzip after 2000 complete lines: incorrect data check', object_key: KEY },
    ]);
  });

  it('gunzipMembers: every member, and only gzip', () => {
    expect(gunzipMembers(Buffer.concat([gzipSync('a\n'), gzipSync('b\n')])).data.toString()).toBe('a\nb\n');
    expect(gunzipMembers(Buffer.from('{"plain": true}\n'))).toStrictEqual({
      data: Buffer.alloc(0),
      problem: { message: 'incorrect header check', unreadable: true },
    });
  });
});
