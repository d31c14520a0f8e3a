import { Args, Command, loadHelpClass } from '@oclif/core';

/** `labctl help [COMMAND...]`: the same help as `labctl COMMAND --help` (what @oclif/plugin-help does). */
export default class Help extends Command {
  static override summary = 'Show help for labctl or for a command: labctl help snapshot save.';
  static override strict = false;
  static override args = { command: Args.string({ description: 'The command (words separated by spaces).' }) };
  static override examples = [
    '<%= config.bin %> help',
    '<%= config.bin %> help create',
    '<%= config.bin %> help snapshot save',
  ];

  async run(): Promise<void> {
    const { argv } = await this.parse(Help);
    const HelpClass = await loadHelpClass(this.config);
    await new HelpClass(this.config, this.config.pjson.oclif.helpOptions ?? this.config.pjson.helpOptions).showHelp(
      argv as string[],
    );
  }
}
