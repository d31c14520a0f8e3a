import { extname } from 'node:path';
import { LabctlError, UsageError } from '@labctl/core/errors';
import { checkName } from '@labctl/core/names';
import type { DiskExportFacts, DiskFormat } from '@labctl/core/provider';
import { Args, Flags } from '@oclif/core';
import { LabctlCommand } from '../../base-command.js';
import { createProgress } from '../../progress.js';
import { hostOrLocalPath } from '../../operations.js';
import { providerCache } from '../../providers.js';
import { prose } from '../../render.js';

const FORMAT_BY_EXTENSION: Record<string, DiskFormat> = {
  '.qcow2': 'qcow2',
  '.vhd': 'vhd',
  '.vhdx': 'vhdx',
  '.raw': 'raw',
  '.img': 'raw',
  '.vmdk': 'vmdk',
};

export interface CaptureResult extends DiskExportFacts {
  vm: string;
  fromSnapshot?: string;
}

export default class TemplateCapture extends LabctlCommand<typeof TemplateCapture> {
  static override summary =
    'Turn a VM\'s disk into a new standalone golden image (the seed\'s "new template from a VM").';
  static override description = prose([
    "Flattens the VM's whole chain (its overlay on the golden image) into one new image, in the format the output's",
    'extension names (.qcow2, .vhd, .vhdx, .raw/.img, .vmdk). The VM must be stopped (labctl stop NAME), or',
    '--from-snapshot copies one of its snapshots while it runs (libvirt). The VM, its chain and the old golden image are only',
    'read; the new image is written under a temporary name, synced, then renamed, and is usable at once:',
    'labctl create --golden OUTPUT. On Hyper-V, OUTPUT is a path on the host (D:\\golden\\web-v2.vhdx) and Convert-VHD',
    'writes it there. Seal the guest first (labctl template prep --seal) when clones must not share its machine-id and keys.',
  ]);
  static override examples = [
    {
      description: 'A new golden image from a stopped VM',
      command: '<%= config.bin %> <%= command.id %> web-01 -o golden-v2.qcow2',
    },
    {
      description: 'For Hyper-V, from a snapshot',
      command: '<%= config.bin %> <%= command.id %> web-01 -o golden-v2.vhdx --from-snapshot after-updates',
    },
  ];
  static override args = { name: Args.string({ description: 'The VM.', required: true }) };
  static override flags = {
    output: Flags.string({
      char: 'o',
      summary: 'The new golden image (its extension picks the format).',
      required: true,
    }),
    'from-snapshot': Flags.string({ summary: 'Capture this snapshot of the VM instead of its current disk.' }),
    force: Flags.boolean({ summary: 'Replace OUTPUT if it exists.' }),
  };

  async run(): Promise<CaptureResult> {
    const name = checkName('vm', this.args.name, 'template capture');
    const snapshot = this.flags['from-snapshot'];
    if (snapshot !== undefined) checkName('snapshot', snapshot, 'template capture --from-snapshot');
    // A path on this machine (libvirt), or on the Hyper-V host (D:\\golden\\web-v2.vhdx): each provider reads its own.
    const output = hostOrLocalPath(this.flags.output);
    const format = FORMAT_BY_EXTENSION[extname(output).toLowerCase()];
    if (!format)
      throw new UsageError('CAPTURE_FORMAT', `cannot tell the format of ${output} from its extension`, {
        hint: `Name it ${Object.keys(FORMAT_BY_EXTENSION).join(', ')}.`,
      });
    const lab = await this.labFile();
    const state = await this.stateStore().read();
    const vm = state?.vms.find((item) => item.name === name);
    if (!vm)
      throw new UsageError('VM_UNKNOWN', `no VM named ${name} in this lab`, {
        hint: "labctl list shows the lab's VMs.",
      });
    const provider = providerCache({ lab, labDir: this.labDir })(vm);
    if (!provider.exportDisk)
      throw new UsageError('CAPTURE_UNSUPPORTED', `the ${provider.name} provider cannot copy a VM's disk yet`, {
        hint: 'Template capture is built for libvirt and Hyper-V.',
      });
    if (snapshot === undefined) {
      const live = (await provider.list(lab.lab)).find((item) => item.name === name);
      if (live && live.state !== 'stopped' && live.state !== 'created')
        throw new UsageError('VM_RUNNING', `${name} is ${live.state}: its disk would be copied while it writes`, {
          hint: `Stop it first (labctl stop ${name}), or capture one of its snapshots (--from-snapshot NAME).`,
        });
    }
    const progress = createProgress({ json: this.jsonEnabled(), subjects: [], finishedBy: () => false });
    let result: Awaited<ReturnType<NonNullable<typeof provider.exportDisk>>>;
    try {
      result = await provider.exportDisk(
        vm,
        { output, format, flatten: true, overwrite: this.flags.force, ...(snapshot ? { snapshot } : {}) },
        progress.sink,
      );
    } finally {
      await progress.stop();
    }
    if (!result.ok)
      throw new LabctlError(result.error.code, result.error.message, {
        ...(result.error.hint ? { hint: result.error.hint } : {}),
        // Refusals about the output come before anything was written.
        exitCode: result.error.code === 'OUTPUT_EXISTS' || result.error.code === 'OUTPUT_IS_SOURCE' ? 2 : 1,
      });
    this.log(
      `${result.facts.path}: ${format}, ${(result.facts.bytes / 2 ** 20).toFixed(0)} MiB, sha256 ${result.facts.sha256}`,
    );
    this.log(`Use it: labctl create --golden ${result.facts.path}`);
    return { vm: name, ...(snapshot ? { fromSnapshot: snapshot } : {}), ...result.facts };
  }
}
