import { planLab } from '@labctl/core/flows/plan-lab';
import { emitDryRun } from '@labctl/hyperv/emit';
import { hyperVProvider } from '@labctl/hyperv/factory';
import { SCRIPT_NAMES, SCRIPTS } from '@labctl/hyperv/scripts/index';
import { Flags } from '@oclif/core';
import { LabctlCommand } from '../../base-command.js';
import { macPrefixFor } from '../../providers.js';
import { renderTable } from '../../render.js';

export interface HyperVScriptsResult {
  scripts: Array<{ name: string; synopsis: string }>;
  emitted?: { dir: string; files: string[]; vms: number };
}

export default class HyperVScripts extends LabctlCommand<typeof HyperVScripts> {
  static override summary = 'List the PowerShell scripts labctl runs on Hyper-V hosts, or write them with their inputs for review.';
  static override description = [
    'labctl runs one script per operation; each takes one JSON document (-InputJson or -InputPath) and prints one JSON',
    'object between markers. With --emit DIR, the lab is planned from labctl.yaml and the flags exactly as `labctl create',
    '--provider hyperv` would, and DIR receives every script byte for byte, the JSON input of every run, and run-<host>.ps1',
    'that runs them in order: for admins who review before anything runs. Offline: no host is contacted, so VMs that are',
    'not pinned to a host are spread round-robin (a live run places them by free memory).',
  ].join('\n');
  static override examples = [
    { description: 'The scripts and what they do', command: '<%= config.bin %> <%= command.id %>' },
    { description: 'Write the scripts and inputs for 10 VMs on hv01 to ./review', command: '<%= config.bin %> <%= command.id %> --emit review --count 10 --host hv01' },
    { description: 'For the web group only', command: '<%= config.bin %> <%= command.id %> --emit review --group web --count 3' },
  ];
  static override flags = {
    emit: Flags.string({ summary: 'Write scripts, JSON inputs and run-<host>.ps1 into this directory.' }),
    count: Flags.integer({ char: 'n', summary: 'How many VMs the group should have.', min: 0, max: 10_000, dependsOn: ['emit'] }),
    group: Flags.string({ char: 'g', summary: 'Group to plan (default: every group of labctl.yaml).', dependsOn: ['emit'] }),
    golden: Flags.string({ summary: 'Golden disk as the Hyper-V host sees it (D:\\Golden\\centos7.vhdx).', dependsOn: ['emit'] }),
    network: Flags.string({ summary: 'Virtual switch.', dependsOn: ['emit'] }),
    memory: Flags.string({ summary: 'Memory per VM: MiB (512) or 512M, 2G.', dependsOn: ['emit'] }),
    cpus: Flags.integer({ summary: 'Virtual CPUs per VM.', min: 1, max: 1024, dependsOn: ['emit'] }),
    host: Flags.string({ summary: 'Hyper-V host: a name from hosts: in labctl.yaml, or user@host.', dependsOn: ['emit'] }),
  };

  async run(): Promise<HyperVScriptsResult> {
    const scripts = SCRIPT_NAMES.map((name) => ({ name, synopsis: SCRIPTS[name].synopsis }));
    const flags = this.flags;
    if (!flags.emit) {
      this.log(renderTable(scripts, [
        { header: 'script', get: (script) => script.name },
        { header: 'what it does', get: (script) => script.synopsis },
      ]));
      return { scripts };
    }
    const lab = await this.labFile();
    const { plan } = planLab(lab, {
      provider: 'hyperv',
      ...(flags.count !== undefined ? { count: flags.count } : {}),
      ...(flags.group ? { group: flags.group } : {}),
      ...(flags.golden ? { golden: flags.golden } : {}),
      ...(flags.network ? { network: flags.network } : {}),
      ...(flags.memory ? { memory: flags.memory } : {}),
      ...(flags.cpus ? { cpus: flags.cpus } : {}),
      ...(flags.host ? { uri: flags.host } : {}),
    }, { macPrefix: macPrefixFor });
    const provider = hyperVProvider({ lab, labDir: this.labDir, ...(flags.host ? { host: flags.host } : {}) });
    const files = await emitDryRun(provider, plan, flags.emit);
    this.log(`Wrote ${files.length} files for ${plan.vms.length} VMs to ${flags.emit} (nothing was contacted). Review, then run run-<host>.ps1 on each host.`);
    return { scripts, emitted: { dir: flags.emit, files, vms: plan.vms.length } };
  }
}
