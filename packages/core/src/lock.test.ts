import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { leftoverTemporaries } from './testing/hostile.js';

/**
 * The state lock under contention, as separate processes (the only way two holders can happen):
 * eight labctl-like processes released together at a barrier, over many rounds, with the lock file
 * missing, stale (a dead PID), empty, garbage, or naming a live process that does not hold it.
 * Inside the lock each writes "enter PID" and "exit PID" to one log; two holders at once would show
 * as two enters in a row. Uses the built module (dist/), which `turbo run test` builds first.
 */
const STATE_JS = resolve(import.meta.dirname, '../dist/state.js');
const PROCESSES = 8;
const ROUNDS = 12;

const CHILD = `
import { appendFileSync, existsSync } from 'node:fs';
const [stateJs, dir, log, go] = process.argv.slice(1);
const { StateStore } = await import(stateJs);
while (!existsSync(go)) await new Promise((r) => setTimeout(r, 2));
try {
  await new StateStore(dir).withLock('demo', 'contender ' + process.pid, async () => {
    appendFileSync(log, 'enter ' + process.pid + '\\n');
    await new Promise((r) => setTimeout(r, 15));
    appendFileSync(log, 'exit ' + process.pid + '\\n');
  });
  process.exit(0);
} catch (err) {
  process.stderr.write(String(err && err.stack || err));
  process.exit(err && err.code === 'STATE_LOCKED' ? 3 : 1);
}
`;

function run(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolvePromise) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', CHILD, ...args], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    child.on('exit', (code) => resolvePromise({ code, stderr }));
  });
}

describe.skipIf(!existsSync(STATE_JS))('state lock under contention', () => {
  it(`never has two holders: ${PROCESSES} processes x ${ROUNDS} rounds, lock file missing, stale, empty, garbage or naming a live non-holder`, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'labctl-lock-'));
    await mkdir(join(dir, '.labctl'), { mode: 0o700 });
    const lockFile = join(dir, '.labctl', 'lock');
    const dead = spawn('true');
    await new Promise((r) => dead.on('exit', r));
    const kinds: Array<[string, string | undefined]> = [
      ['missing', undefined],
      [
        'stale',
        JSON.stringify({
          pid: dead.pid,
          host: (await import('node:os')).hostname(),
          command: 'create',
          startedAt: 'then',
        }),
      ],
      ['empty', ''],
      ['garbage', '\u0000\u001b[2J not json {{{'],
      [
        'live non-holder',
        JSON.stringify({
          pid: process.pid,
          host: (await import('node:os')).hostname(),
          command: 'x',
          startedAt: 'now',
        }),
      ],
    ];
    const winners: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const [kind, content] = kinds[round % kinds.length]!;
      await rm(lockFile, { force: true });
      if (content !== undefined) await writeFile(lockFile, content);
      const log = join(dir, `round-${round}.log`);
      const go = join(dir, `go-${round}`);
      await writeFile(log, '');
      const children = Array.from({ length: PROCESSES }, () => run([STATE_JS, dir, log, go]));
      // Let every child load and reach the barrier, then release them together.
      await new Promise((r) => setTimeout(r, 1500));
      await writeFile(go, '');
      const results = await Promise.all(children);
      for (const result of results)
        expect([kind, result.code, result.stderr]).toEqual([kind, result.code === 0 ? 0 : 3, result.stderr]);
      const lines = (await readFile(log, 'utf8')).trim().split('\n').filter(Boolean);
      // Strictly alternating enter/exit of the same process: no overlap, ever.
      for (let i = 0; i < lines.length; i += 2) {
        const [enter, exit] = [lines[i]!, lines[i + 1]];
        expect([kind, enter.startsWith('enter '), exit]).toEqual([kind, true, enter.replace('enter', 'exit')]);
      }
      expect(lines.length / 2).toBe(results.filter((r) => r.code === 0).length);
      winners.push(lines.length / 2);
    }
    expect(winners.every((n) => n >= 1)).toBe(true);
    expect((await stat(lockFile)).isFile()).toBe(true);
    expect(await leftoverTemporaries(dir)).toEqual([]);
    await rm(dir, { recursive: true, force: true });
  }, 120_000);
});
