import type { SnapshotRequest } from '@labctl/core/provider';
import { Flags } from '@oclif/core';
import { type SnapshotResult, SnapshotCommand, selectionFlags } from '../../snapshots.js';
import { prose } from '../../render.js';

export default class SnapshotSave extends SnapshotCommand<typeof SnapshotSave> {
  static override summary = "Take a snapshot of VMs, on top of each VM's stack.";
  static override description = prose([
    'Snapshots are a stack per VM, named snap-1, snap-2, ... unless --name says otherwise. libvirt: an internal snapshot',
    "inside the VM's own qcow2 overlay (memory too when the VM runs), never touching the golden image. Hyper-V: a",
    "checkpoint (Checkpoint-VM); --type sets the VM's checkpoint type first. Refused when the volume holding the disk",
    'has less than --min-free GiB free: a VM whose disk cannot grow is paused (Hyper-V: Paused-Critical).',
  ]);
  static override examples = [
    {
      description: 'Before an upgrade, every VM of the lab',
      command: '<%= config.bin %> <%= command.id %> --all --name before-upgrade',
    },
    { description: 'The next snap-N of one VM', command: '<%= config.bin %> <%= command.id %> web-01' },
  ];
  static override flags = {
    ...selectionFlags,
    name: Flags.string({ char: 'n', summary: 'Name of the new snapshot (default snap-N).' }),
    type: Flags.string({
      summary: "Hyper-V checkpoint type (sets the VM's CheckpointType); libvirt ignores it.",
      options: ['standard', 'production'],
    }),
    'min-free': Flags.integer({
      summary: 'GiB that must be free where the disk lives.',
      min: 0,
      max: 1_000_000,
      default: 2,
    }),
  };

  protected request(): SnapshotRequest {
    return {
      action: 'save',
      ...(this.flags.name ? { name: this.flags.name } : {}),
      ...(this.flags.type ? { type: this.flags.type as 'standard' | 'production' } : {}),
      minFreeBytes: this.flags['min-free'] * 2 ** 30,
    };
  }

  async run(): Promise<SnapshotResult> {
    return this.runSnapshot();
  }
}
