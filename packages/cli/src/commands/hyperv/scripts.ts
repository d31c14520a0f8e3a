import { emitDryRun } from '@labctl/hyperv/emit';
import { hyperVProvider } from '@labctl/hyperv/factory';
import { SCRIPT_NAMES, SCRIPTS } from '@labctl/hyperv/scripts/index';
import { Flags } from '@oclif/core';
import { LabctlCommand } from '../../base-command.js';
import { planFlags, planFromFlags } from '../../plan-flags.js';
import { prose, renderTable } from '../../render.js';

export interface HyperVScriptsResult {
  scripts: Array<{ name: string; synopsis: string }>;
  emitted?: { dir: string; files: string[]; vms: number };
}

export default class HyperVScripts extends LabctlCommand<typeof HyperVScripts> {
  static override summary =
    'List the PowerShell scripts labctl runs on Hyper-V hosts, or write them with their inputs for review.';
  static override description = prose([
    'labctl runs one script per operation; each takes one JSON document (-InputJson or -InputPath) and prints one JSON',
    'object between markers. With --emit DIR, the lab is planned from labctl.yaml and the flags exactly as `labctl create',
    '--provider hyperv` would, and DIR receives every script byte for byte, the JSON input of every run, and run-<host>.ps1',
    'that runs them in order: for admins who review before anything runs. Offline: no host is contacted, so VMs that are',
    'not pinned to a host are spread round-robin (a live run places them by free memory).',
  ]);
  static override examples = [
    { description: 'The scripts and what they do', command: '<%= config.bin %> <%= command.id %>' },
    {
      description: 'Write the scripts and inputs for 10 VMs on hv01 to ./review',
      command: '<%= config.bin %> <%= command.id %> --emit review --count 10 --host hv01',
    },
    {
      description: 'For the web group only',
      command: '<%= config.bin %> <%= command.id %> --emit review --group web --count 3',
    },
  ];
  static override flags = {
    emit: Flags.string({ summary: 'Write scripts, JSON inputs and run-<host>.ps1 into this directory.' }),
    // The plan flags of `labctl create`, the same objects: the same flags plan the same VMs.
    ...(Object.fromEntries(
      Object.entries(planFlags).map(([name, flag]) => [name, { ...flag, dependsOn: ['emit'] }]),
    ) as typeof planFlags),
    host: Flags.string({
      summary: 'Hyper-V host: a name from hosts: in labctl.yaml, or user@host.',
      dependsOn: ['emit'],
    }),
  };

  async run(): Promise<HyperVScriptsResult> {
    const scripts = SCRIPT_NAMES.map((name) => ({ name, synopsis: SCRIPTS[name].synopsis }));
    const flags = this.flags;
    if (!flags.emit) {
      this.log(
        renderTable(scripts, [
          { header: 'script', get: (script) => script.name },
          { header: 'what it does', get: (script) => script.synopsis },
        ]),
      );
      return { scripts };
    }
    const lab = await this.labFile();
    const { plan } = await planFromFlags(lab, this.stateStore(), flags, {
      provider: 'hyperv',
      ...(flags.host ? { uri: flags.host } : {}),
    });
    const provider = hyperVProvider({ lab, labDir: this.labDir, ...(flags.host ? { host: flags.host } : {}) });
    const files = await emitDryRun(provider, plan, flags.emit);
    this.log(
      `Wrote ${files.length} files for ${plan.vms.length} VMs to ${flags.emit} (nothing was contacted). Review, then run run-<host>.ps1 on each host.`,
    );
    return { scripts, emitted: { dir: flags.emit, files, vms: plan.vms.length } };
  }
}
