import type { SnapshotRequest } from '@labctl/core/provider';
import { type SnapshotResult, SnapshotCommand, selectionFlags, snapshotName } from '../../snapshots.js';
import { prose } from '../../render.js';

export default class SnapshotDelete extends SnapshotCommand<typeof SnapshotDelete> {
  static override summary = 'Delete a snapshot (default: the newest); the VM keeps its current state.';
  static override description = prose([
    'A snapshot in the middle of the stack can be deleted: the ones above it keep their content (libvirt: qcow2 drops',
    "the snapshot's clusters; Hyper-V merges its AVHDX into its parent).",
  ]);
  static override examples = [
    { description: 'The newest snapshot of one VM', command: '<%= config.bin %> <%= command.id %> web-01' },
    {
      description: 'A named snapshot of every VM',
      command: '<%= config.bin %> <%= command.id %> --all --name before-upgrade',
    },
  ];
  static override flags = { ...selectionFlags, name: snapshotName };

  protected request(): SnapshotRequest {
    return { action: 'delete', ...(this.flags.name ? { name: this.flags.name } : {}) };
  }

  async run(): Promise<SnapshotResult> {
    return this.runSnapshot();
  }
}
