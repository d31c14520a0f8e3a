import { Command } from '@oclif/core';
import { completions } from '../completion.js';

/** What the completion scripts call: the candidates for the last word, one per line. */
export default class Complete extends Command {
  static override hidden = true;
  static override strict = false;
  static override summary = 'Completion candidates for the words after labctl (used by labctl completion scripts).';

  async run(): Promise<void> {
    // The scripts pass `--` first: oclif would otherwise answer a typed --help itself.
    const given = this.argv[0] === '--' ? this.argv.slice(1) : this.argv;
    const words = given.length === 0 ? [''] : given;
    const out = completions(this.config, words);
    if (out.length) process.stdout.write(`${out.join('\n')}\n`);
  }
}
