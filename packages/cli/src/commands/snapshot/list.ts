import type { SnapshotRequest } from '@labctl/core/provider';
import { type SnapshotResult, SnapshotCommand, selectionFlags } from '../../snapshots.js';

export default class SnapshotList extends SnapshotCommand<typeof SnapshotList> {
  static override summary = "Show each VM's snapshots, oldest first (the stack).";
  static override examples = [
    { description: 'Every VM of the lab', command: '<%= config.bin %> <%= command.id %> --all' },
    { description: 'One VM, as JSON', command: '<%= config.bin %> <%= command.id %> web-01 --json' },
  ];
  static override flags = { ...selectionFlags };

  protected request(): SnapshotRequest {
    return { action: 'list' };
  }

  async run(): Promise<SnapshotResult> {
    return this.runSnapshot();
  }
}
