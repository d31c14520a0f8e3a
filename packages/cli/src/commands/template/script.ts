import { loadProfile, selectSteps } from '@labctl/template/catalog';
import { renderScript } from '@labctl/template/script';
import { Flags } from '@oclif/core';
import { LabctlCommand } from '../../base-command.js';
import { profileFlag, stepFlags } from './steps.js';

export interface TemplateScriptResult {
  profile: string;
  steps: string[];
  script: string;
}

export default class TemplateScript extends LabctlCommand<typeof TemplateScript> {
  static override summary = 'Print one standalone, idempotent bash script doing the prep steps.';
  static override description =
    "For a machine without labctl: the script checks the distribution, then runs each step's check and, only when needed, its apply, " +
    'and ends with a recap (ok/changed/failed). Run it as root; a second run changes nothing.';
  static override examples = [
    {
      description: 'Run the CentOS 7 steps on a template VM',
      command: '<%= config.bin %> <%= command.id %> | ssh root@10.0.0.5 bash -s',
    },
    {
      description: 'Without the online update, into a file',
      command: '<%= config.bin %> <%= command.id %> --skip yum-update > prep.sh',
    },
    { description: 'Including the final seal and power-off', command: '<%= config.bin %> <%= command.id %> --seal' },
  ];
  static override flags = {
    profile: profileFlag,
    ...stepFlags,
    seal: Flags.boolean({ summary: 'Add the final seal step (scrub and power off).' }),
  };

  async run(): Promise<TemplateScriptResult> {
    const profile = loadProfile(this.flags.profile);
    const steps = selectSteps(profile, {
      ...(this.flags.step ? { steps: this.flags.step } : {}),
      ...(this.flags.skip ? { skip: this.flags.skip } : {}),
      seal: this.flags.seal,
    });
    const script = renderScript(profile, steps);
    if (!this.jsonEnabled()) process.stdout.write(script);
    return { profile: profile.name, steps: steps.map((s) => s.id), script };
  }
}
