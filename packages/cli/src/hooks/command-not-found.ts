import type { Hook } from '@oclif/core';
import { EXIT_USAGE } from '@labctl/core/errors';
import { terminalSafe } from '../render.js';
import { closest } from '../suggest.js';

/**
 * An unknown command is a usage error like any other (exit 2): one line, a did-you-mean hint, and
 * the `--json` error envelope when `--json` was given. Never runs the guess: a typo of `destroy`
 * must not do something.
 */
const hook: Hook<'command_not_found'> = async function (opts) {
  const visible = opts.config.commands.filter((command) => !command.hidden);
  const ids = [...visible.map((command) => command.id), ...visible.flatMap((command) => command.aliases)];
  const asTyped = (id: string) => id.replaceAll(':', ' ');
  const guess = closest(opts.id, ids);
  const topic = opts.config.findTopic(opts.id.split(':')[0] ?? '');
  const error = {
    code: 'COMMAND_NOT_FOUND',
    message: `${asTyped(opts.id)} is not a labctl command`,
    hint: guess
      ? `Did you mean: labctl ${asTyped(guess)}? Run labctl help for the commands.`
      : `Run labctl help${topic ? ` ${topic.name}` : ''} for the commands.`,
  };
  if ((opts.argv ?? []).includes('--json')) this.log(JSON.stringify({ error }, null, 2));
  else process.stderr.write(`labctl: error: ${terminalSafe(error.message)}\n  hint: ${terminalSafe(error.hint)}\n`);
  this.exit(EXIT_USAGE);
};

export default hook;
