import { LabctlCommand } from '../base-command.js';

export interface VersionResult {
  version: string;
  node: string;
  platform: string;
  arch: string;
}

export default class Version extends LabctlCommand<typeof Version> {
  static override summary = "Show labctl's version, and the Node.js and platform it runs on.";
  static override examples = ['<%= config.bin %> version', '<%= config.bin %> version --json'];

  async run(): Promise<VersionResult> {
    const result = {
      version: this.config.version,
      node: process.version,
      platform: process.platform,
      arch: process.arch,
    };
    this.log(`labctl ${result.version} (node ${result.node}, ${result.platform}-${result.arch})`);
    return result;
  }
}
