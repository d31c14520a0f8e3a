import { importVm } from '@labctl/core/flows/bundle';
import type { VmRecord } from '@labctl/core/state';
import { Args, Flags } from '@oclif/core';
import { LabctlCommand } from '../base-command.js';
import { DEFAULT_PROVIDER, makeProvider } from '../providers.js';
import { prose } from '../render.js';

export default class Import extends LabctlCommand<typeof Import> {
  static override summary = 'Make an exported VM (a labctl export bundle) a VM of this lab again, stopped.';
  static override description = prose([
    'Checks the bundle first (every file against SHA256SUMS, vm.json like a lab file; exit 2 otherwise), then copies its',
    "disk and seed into the lab and defines the VM on the lab's connection (or --uri) with the bundle's name, MAC and",
    'host keys, pinned in the state at once. The VM is left stopped: labctl start NAME. A VM of that name must not exist.',
  ]);
  static override examples = [
    {
      description: 'Restore a backup',
      command: '<%= config.bin %> <%= command.id %> /backup/lab/web-01 && labctl start web-01',
    },
  ];
  static override args = {
    dir: Args.string({ description: 'The bundle directory (DIR/NAME from labctl export).', required: true }),
  };
  static override flags = {
    uri: Flags.string({
      summary: "libvirt URI to define the VM at (default: the lab file's, or qemu:///system).",
      env: 'LIBVIRT_DEFAULT_URI',
    }),
  };

  async run(): Promise<VmRecord> {
    const lab = await this.labFile();
    const uri = this.flags.uri ?? lab.spec.uri;
    const provider = makeProvider(lab.spec.provider ?? DEFAULT_PROVIDER, {
      lab,
      labDir: this.labDir,
      ...(uri ? { connection: uri } : {}),
    });
    const record = await importVm({
      lab: lab.lab,
      store: this.stateStore(),
      provider,
      dir: this.args.dir,
      events: this.progressSink(),
    });
    this.log(
      `${record.name}: imported (stopped) with its ${record.ssh.hostKeys.length} pinned host key(s). Start it: labctl start ${record.name}`,
    );
    return record;
  }
}
