import { destroyLab, type DestroySummary } from '@labctl/core/flows/destroy';
import { LabctlError, UsageError } from '@labctl/core/errors';
import type { Provider } from '@labctl/core/provider';
import { Args, Flags } from '@oclif/core';
import { LabctlCommand } from '../base-command.js';
import { confirm, interactive } from '../confirm.js';
import { interruptOnSigint } from '../interrupt.js';
import { createProgress } from '../progress.js';
import { DEFAULT_PROVIDER, makeProvider, providerCache } from '../providers.js';
import { prose, renderTable } from '../render.js';

export default class Destroy extends LabctlCommand<typeof Destroy> {
  static override needsLab = true;
  static override summary = 'Destroy VMs of the lab and their own disks; never the golden image.';
  static override description = prose([
    'Stops and removes the named VMs (or --all), their overlays, console logs and domain definitions. The golden image',
    'and any parent disk are never touched, and VMs that labctl did not make are never removed. The state is updated after',
    'every VM, so an interrupted destroy is finished by running it again; destroying what is already gone is not an error.',
    'With --all, VMs of this lab that the hypervisor has but the state lost (a killed run) are removed too.',
  ]);
  static override examples = [
    { description: 'Everything the lab made', command: '<%= config.bin %> <%= command.id %> --all' },
    {
      description: 'Two VMs, keeping their disks for a post-mortem',
      command: '<%= config.bin %> <%= command.id %> vm-03 vm-07 --keep-disks',
    },
    {
      description: 'For scripts (no question asked)',
      command: '<%= config.bin %> <%= command.id %> --all --yes --json',
    },
  ];
  static override strict = false;
  static override args = { names: Args.string({ description: 'VM names (several allowed).' }) };
  static override flags = {
    all: Flags.boolean({ summary: 'Every VM of the lab (asks first on a terminal, unless --yes).' }),
    yes: Flags.boolean({ char: 'y', summary: 'Do not ask before destroying every VM (--all on a terminal).' }),
    'keep-disks': Flags.boolean({ summary: "Keep the VMs' overlay disks (remove only the VMs)." }),
    uri: Flags.string({
      summary: "libvirt URI to look for orphaned VMs at (default: the lab file's, or qemu:///system).",
      env: 'LIBVIRT_DEFAULT_URI',
    }),
  };

  async run(): Promise<DestroySummary & { warnings?: string[] }> {
    const names = this.argv.filter((arg) => !arg.startsWith('-') && !this.isFlagValue(arg));
    if (!this.flags.all && names.length === 0) {
      throw new UsageError('NOTHING_TO_DESTROY', 'name the VMs to destroy, or pass --all', {
        hint: 'labctl destroy vm-01 vm-02, or labctl destroy --all',
      });
    }
    if (this.flags.all && names.length > 0) throw new UsageError('USAGE', 'pass either VM names or --all, not both');
    const lab = await this.labFile();
    if (this.flags.all && !this.flags.yes && !this.jsonEnabled() && interactive()) {
      const recorded = (await this.stateStore().read())?.vms.map((vm) => vm.name) ?? [];
      const listed =
        recorded.length > 6
          ? `${recorded.slice(0, 5).join(', ')} and ${recorded.length - 5} more`
          : recorded.join(', ');
      const question = `Destroy every VM of lab "${lab.lab}"${recorded.length ? ` (${recorded.length}: ${listed})` : ''} and their disks?`;
      if (!(await confirm(question))) {
        this.log('Nothing destroyed.');
        process.exitCode = 1;
        return { lab: lab.lab, vms: [], keptDisks: this.flags['keep-disks'], interrupted: false };
      }
    }
    const context = { lab, labDir: this.labDir };
    const uri = this.flags.uri ?? lab.spec.uri;
    // The lab's default connection is also searched for VMs an interrupted run made but did not
    // record. A lab with no default connection (Hyper-V without hosts:, VMs made with --host) has
    // nowhere to search: its recorded VMs are still destroyed through the hosts they name.
    const scanner = defaultScanner(() =>
      makeProvider(lab.spec.provider ?? DEFAULT_PROVIDER, { ...context, ...(uri ? { connection: uri } : {}) }),
    );
    const providerFor = providerCache(context);
    const progress = createProgress({ json: this.jsonEnabled(), subjects: [], finishedBy: () => false });
    const interrupt = interruptOnSigint((message) => this.note(message));
    let summary: DestroySummary;
    try {
      summary = await destroyLab({
        lab: lab.lab,
        provider: providerFor,
        scan: scanner ? [scanner] : [],
        store: this.stateStore(),
        names,
        all: this.flags.all,
        keepDisks: this.flags['keep-disks'],
        ...(lab.spec.concurrency ? { concurrency: lab.spec.concurrency } : {}),
        events: progress.sink,
        signal: interrupt.signal,
      });
    } finally {
      interrupt.dispose();
      await progress.stop();
    }
    if (summary.vms.length === 0) this.log(`Nothing to destroy in lab "${summary.lab}".`);
    else
      this.log(
        renderTable(summary.vms, [
          { header: 'name', get: (vm) => vm.name },
          { header: 'result', get: (vm) => vm.result },
          { header: 'error', get: (vm) => vm.error ?? '' },
        ]),
      );
    for (const vm of summary.vms) for (const warning of vm.warnings ?? []) this.note(`${vm.name}: ${warning}`);
    if (summary.interrupted) process.exitCode = 130;
    else if (summary.vms.some((vm) => vm.result === 'failed')) process.exitCode = 1;
    return { ...summary, ...(this.warnings.length ? { warnings: this.warnings } : {}) };
  }

  private isFlagValue(arg: string): boolean {
    const index = this.argv.indexOf(arg);
    return index > 0 && ['--uri', '--lab-dir'].includes(this.argv[index - 1]!);
  }
}

function defaultScanner(make: () => Provider): Provider | undefined {
  try {
    return make();
  } catch (error) {
    if (error instanceof LabctlError && error.exitCode === 2) return undefined;
    throw error;
  }
}
