import { type ExportResult, exportVms } from '@labctl/core/flows/bundle';
import { operationExitCode } from '@labctl/core/flows/operate';
import { Args, Flags } from '@oclif/core';
import { LabctlCommand } from '../base-command.js';
import { interruptOnSigint } from '../interrupt.js';
import { hostOrLocalPath, positionalNames, SELECTION_VALUE_FLAGS, selectionFlags } from '../operations.js';
import { createProgress } from '../progress.js';
import { providerCache } from '../providers.js';
import { prose, renderTable } from '../render.js';

export default class Export extends LabctlCommand<typeof Export> {
  static override needsLab = true;
  static override summary =
    'Copy stopped VMs out as self-contained bundles (or OVA packages) that labctl import restores.';
  static override description = prose([
    "Seed 003's backup by copying a VM's files, done safely. For each VM, DIR/NAME/ gets its disk flattened into one",
    'qcow2 (the golden image is not needed to restore it), its seed (with its private host keys: the directory is 0700),',
    "libvirt's domain XML, labctl's description (vm.json) and SHA256SUMS, written last (`sha256sum -c SHA256SUMS`",
    'checks a bundle). A re-run skips complete bundles and redoes unfinished ones. The VMs must be stopped.',
    '--format ova writes DIR/NAME.ova instead: an OVF 1.0 descriptor, a streamOptimized VMDK and a SHA-256 manifest,',
    'for other hypervisors (VirtualBox, VMware). Kernel and initrd files of direct-kernel-boot VMs are named, not copied.',
    "On Hyper-V, DIR is a folder on the VM's host (D:\\exports): Export-VM's own layout plus vm.json and SHA256SUMS.",
  ]);
  static override examples = [
    { description: 'Back up two VMs', command: '<%= config.bin %> <%= command.id %> web-01 db-01 -o /backup/lab' },
    {
      description: 'An OVA for VirtualBox',
      command: '<%= config.bin %> <%= command.id %> web-01 -o /tmp/out --format ova',
    },
  ];
  static override strict = false;
  static override args = { names: Args.string({ description: 'VM names (several allowed).' }) };
  static override flags = {
    ...selectionFlags,
    output: Flags.string({ char: 'o', summary: 'Directory the bundles go into (made when missing).', required: true }),
    format: Flags.string({
      summary: 'A labctl bundle (restorable with labctl import) or an OVF package.',
      options: ['bundle', 'ova'],
      default: 'bundle',
    }),
  };

  async run(): Promise<{ lab: string; vms: ExportResult[]; interrupted: boolean }> {
    const lab = await this.labFile();
    const progress = createProgress({ json: this.jsonEnabled(), subjects: [], finishedBy: () => false });
    const interrupt = interruptOnSigint((message) => this.note(message));
    let summary: Awaited<ReturnType<typeof exportVms>>;
    try {
      summary = await exportVms({
        lab: lab.lab,
        store: this.stateStore(),
        provider: providerCache({ lab, labDir: this.labDir }),
        names: positionalNames(this.argv, [...SELECTION_VALUE_FLAGS, '--output', '-o', '--format']),
        ...(this.flags.group ? { groups: this.flags.group } : {}),
        all: this.flags.all,
        dir: hostOrLocalPath(this.flags.output),
        format: this.flags.format as 'bundle' | 'ova',
        events: progress.sink,
        signal: interrupt.signal,
      });
    } finally {
      interrupt.dispose();
      await progress.stop();
    }
    this.log(
      renderTable(summary.vms, [
        { header: 'name', get: (vm) => vm.name },
        { header: 'result', get: (vm) => (vm.ok ? (vm.facts.written ? 'exported' : 'already complete') : 'failed') },
        { header: 'path', get: (vm) => (vm.ok ? vm.facts.path : vm.error.message) },
      ]),
    );
    process.exitCode = operationExitCode(summary);
    return summary;
  }
}
