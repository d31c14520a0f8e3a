import { Args, Command } from '@oclif/core';
import { COMPLETION_SCRIPTS } from '../completion.js';

export default class Completion extends Command {
  static override summary = 'Print the shell completion script for bash, zsh or fish.';
  static override description =
    'Completes commands, flags, flag values and the VM names of the lab in the current directory (or --lab-dir). The script asks labctl for the candidates, so it never goes stale.';
  static override args = {
    shell: Args.string({ description: 'The shell.', options: ['bash', 'zsh', 'fish'], required: true }),
  };
  static override examples = [
    { description: 'bash, this session', command: 'source <(<%= config.bin %> <%= command.id %> bash)' },
    { description: 'bash, every session', command: "echo 'source <(labctl completion bash)' >> ~/.bashrc" },
    { description: 'zsh', command: 'source <(<%= config.bin %> <%= command.id %> zsh)' },
    {
      description: 'fish',
      command: '<%= config.bin %> <%= command.id %> fish > ~/.config/fish/completions/labctl.fish',
    },
  ];

  async run(): Promise<void> {
    const { args } = await this.parse(Completion);
    process.stdout.write(COMPLETION_SCRIPTS[args.shell as keyof typeof COMPLETION_SCRIPTS]);
  }
}
