import { createInterface } from 'node:readline/promises';
import { terminalSafe } from './render.js';

/** Whether a person is at the keyboard: stdin and stderr both terminals (not a pipe, not CI). */
export function interactive(): boolean {
  return Boolean(process.stdin.isTTY && process.stderr.isTTY);
}

/** Asks a yes/no question on the terminal; anything but y/yes is no (the safe answer). */
export async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await rl.question(`${terminalSafe(question)} [y/N] `);
    return /^\s*y(es)?\s*$/i.test(answer);
  } finally {
    rl.close();
  }
}
