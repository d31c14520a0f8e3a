import type { SnapshotRequest } from '@labctl/core/provider';
import { type SnapshotResult, SnapshotCommand, selectionFlags, snapshotName } from '../../snapshots.js';
import { prose } from '../../render.js';

export default class SnapshotRevert extends SnapshotCommand<typeof SnapshotRevert> {
  static override summary = 'Go back to a snapshot (default: the newest); what was written since is lost.';
  static override description = prose([
    'The VM returns to the state of the snapshot: a snapshot taken while it ran resumes it running (libvirt) or saved',
    '(Hyper-V standard checkpoint); one taken while it was off leaves it off. The snapshot stays on the stack, so',
    'reverting again goes back to the same point.',
  ]);
  static override examples = [
    { description: 'Undo everything since the last snapshot', command: '<%= config.bin %> <%= command.id %> web-01' },
    {
      description: 'Every VM to a named snapshot',
      command: '<%= config.bin %> <%= command.id %> --all --name before-upgrade',
    },
  ];
  static override flags = { ...selectionFlags, name: snapshotName };

  protected request(): SnapshotRequest {
    return { action: 'revert', ...(this.flags.name ? { name: this.flags.name } : {}) };
  }

  async run(): Promise<SnapshotResult> {
    return this.runSnapshot();
  }
}
