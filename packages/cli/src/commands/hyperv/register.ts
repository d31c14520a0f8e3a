import { UsageError } from '@labctl/core/errors';
import { hyperVProvider } from '@labctl/hyperv/factory';
import type { RegisterVmResult } from '@labctl/hyperv/types';
import { Args, Flags } from '@oclif/core';
import { LabctlCommand } from '../../base-command.js';
import { prose, renderTable } from '../../render.js';

export interface HyperVRegisterResult {
  host: string;
  dryRun: boolean;
  vms: RegisterVmResult[];
}

export default class HyperVRegister extends LabctlCommand<typeof HyperVRegister> {
  static override summary = 'Register VMs on a Hyper-V host in place from their configuration files (.vmcx or .xml).';
  static override description = prose([
    'For VMs whose files are on the host but which Hyper-V no longer lists (a reinstalled host, storage moved from',
    'another host, a VM that was never exported). Runs Compare-VM -Register, reports every incompatibility, fixes the ones',
    'it can (a network adapter whose switch is missing is connected to --switch, or disconnected; a disk that moved is',
    're-pointed to the file of the same name under --vhd-dir), then Import-VM -Register. Disks and configuration files stay',
    'where they are: nothing is copied, moved or deleted, and the VM keeps its Id. A VM already registered is reported and',
    'left alone. PATH is the configuration file as the host sees it: <folder>\\Virtual Machines\\<GUID>.vmcx.',
  ]);
  static override examples = [
    {
      description: 'Register one VM, re-pointing its disks to D:\\Disks and its network to LabSwitch',
      command:
        "<%= config.bin %> <%= command.id %> 'D:\\VMs\\web01\\Virtual Machines\\5D2B7A9C-1111-4C3B-8D7E-0A1B2C3D4E5F.vmcx' --host hv01 --vhd-dir 'D:\\Disks' --switch LabSwitch",
    },
    {
      description: 'Only report what would be fixed',
      command:
        "<%= config.bin %> <%= command.id %> 'E:\\Old\\Virtual Machines\\6E3C8B0D-2222-4C3B-8D7E-0A1B2C3D4E5F.vmcx' --host admin@hv02 --dry-run",
    },
    {
      description: 'As JSON',
      command:
        "<%= config.bin %> <%= command.id %> 'E:\\Old\\Virtual Machines\\6E3C8B0D-2222-4C3B-8D7E-0A1B2C3D4E5F.vmcx' --host hv01 --json",
    },
  ];
  static override strict = false;
  static override args = {
    path: Args.string({
      description: 'Configuration file(s) of the VM(s), as paths on the Hyper-V host.',
      required: true,
    }),
  };
  static override flags = {
    host: Flags.string({
      summary: 'Hyper-V host: a name from hosts: in labctl.yaml, or user@host[:port].',
      required: false,
    }),
    'vhd-dir': Flags.string({ summary: 'Folder on the host where moved disks now are (matched by file name).' }),
    switch: Flags.string({
      summary: 'Virtual switch for network adapters whose switch is missing (default: disconnect them).',
    }),
    'dry-run': Flags.boolean({ summary: 'Report and fix nothing; register nothing.' }),
  };

  async run(): Promise<HyperVRegisterResult> {
    const { argv } = await this.parse(HyperVRegister);
    const paths = (argv as string[]).filter((path) => path.length > 0);
    for (const path of paths) {
      if (!/\.(vmcx|xml)$/i.test(path)) {
        throw new UsageError('HYPERV_REGISTER_PATH', `${path} is not a VM configuration file (.vmcx or .xml)`, {
          hint: 'Give the file under "Virtual Machines\\" whose name is the VM GUID, e.g. ...\\Virtual Machines\\5D2B7A9C-....vmcx',
        });
      }
    }
    const lab = await this.labFile();
    const provider = hyperVProvider({
      lab,
      labDir: this.labDir,
      ...(this.flags.host ? { host: this.flags.host } : {}),
    });
    const hosts = lab.spec.hosts ?? [];
    const host = this.flags.host ?? (hosts.length === 1 ? hosts[0]?.name : undefined);
    if (!host)
      throw new UsageError('HYPERV_HOST_REQUIRED', 'which Hyper-V host? pass --host', {
        hint: 'A name from hosts: in labctl.yaml, or user@host.',
      });
    let vms: RegisterVmResult[];
    try {
      const driver = await provider.driver(provider.hostNames()[0] ?? host);
      vms = await driver.registerVms({
        paths,
        ...(this.flags['vhd-dir'] ? { vhdDir: this.flags['vhd-dir'] } : {}),
        ...(this.flags.switch ? { switch: this.flags.switch } : {}),
        dryRun: this.flags['dry-run'],
      });
    } finally {
      await provider.close();
    }
    this.log(
      renderTable(vms, [
        { header: 'vm', get: (vm) => vm.name ?? '' },
        {
          header: 'result',
          get: (vm) =>
            vm.already
              ? 'already registered'
              : vm.registered
                ? 'registered'
                : vm.ok
                  ? 'ready (dry run)'
                  : 'not registered',
        },
        { header: 'fixed', get: (vm) => (vm.fixes ?? []).map((fix) => fix.fix).join('; ') },
        {
          header: 'still wrong',
          get: (vm) =>
            [...(vm.remaining ?? []).map((item) => item.message), vm.error?.message ?? ''].filter(Boolean).join('; '),
        },
        { header: 'config', get: (vm) => vm.path },
      ]),
    );
    if (vms.some((vm) => !vm.ok)) process.exitCode = 1;
    return { host, dryRun: this.flags['dry-run'], vms };
  }
}
