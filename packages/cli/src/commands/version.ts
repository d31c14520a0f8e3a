import { Command } from '@oclif/core';

export interface VersionResult {
  version: string;
  node: string;
  platform: string;
  arch: string;
}

/**
 * A plain oclif command, not a LabctlCommand: it needs no lab, so it loads none of the lab's
 * modules (zod, yaml) and starts as fast as `labctl --version` (bench/startup).
 */
export default class Version extends Command {
  static override summary = "Show labctl's version, and the Node.js and platform it runs on.";
  static override enableJsonFlag = true;
  static override examples = ['<%= config.bin %> version', '<%= config.bin %> version --json'];

  async run(): Promise<VersionResult> {
    await this.parse(Version);
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
