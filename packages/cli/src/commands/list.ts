import { bestAddress } from '@labctl/core/address';
import type { VmRecord } from '@labctl/core/state';
import { Flags } from '@oclif/core';
import { LabctlCommand } from '../base-command.js';
import { renderTable } from '../render.js';

export interface ListResult {
  lab: string;
  stateFile: string;
  vms: Array<Pick<VmRecord, 'name' | 'group' | 'provider' | 'host' | 'state' | 'mac' | 'addresses'> & { address: string | null }>;
}

export default class List extends LabctlCommand<typeof List> {
  static override summary = "List the lab's VMs with their group, state and addresses.";
  static override description =
    'Reads .labctl/state.json of the lab directory; nothing is contacted. The ADDRESS column is the address labctl would ' +
    'hand to Ansible (a routable IPv4 before IPv6; never 0.0.0.0, APIPA or link-local). Run `labctl ip --wait` to refresh addresses.';
  static override examples = [
    { description: 'The VMs of the lab in the current directory', command: '<%= config.bin %> <%= command.id %>' },
    { description: 'Only the web group, as JSON', command: '<%= config.bin %> <%= command.id %> --group web --json' },
    { description: 'Another lab directory', command: '<%= config.bin %> <%= command.id %> --lab-dir ~/labs/k8s' },
  ];
  static override flags = {
    group: Flags.string({ char: 'g', summary: 'Only VMs of this group.', multiple: true }),
  };

  async run(): Promise<ListResult> {
    const lab = await this.labFile();
    const store = this.stateStore();
    const state = await store.load(lab.lab);
    const groups = this.flags.group;
    const vms = state.vms
      .filter((vm) => !groups || groups.includes(vm.group))
      .map((vm) => ({
        name: vm.name,
        group: vm.group,
        provider: vm.provider,
        host: vm.host,
        state: vm.state,
        mac: vm.mac,
        addresses: vm.addresses,
        address: bestAddress(vm.addresses) ?? null,
      }));
    if (vms.length === 0) {
      this.log(`No VMs in lab "${state.lab}" (${store.file}). Create some with: labctl create --count 3`);
    } else {
      this.log(
        renderTable(vms, [
          { header: 'name', get: (vm) => vm.name },
          { header: 'group', get: (vm) => vm.group },
          { header: 'state', get: (vm) => vm.state },
          { header: 'address', get: (vm) => vm.address },
          { header: 'host', get: (vm) => vm.host },
          { header: 'all addresses', get: (vm) => vm.addresses.join(',') || '-' },
        ]),
      );
    }
    return { lab: state.lab, stateFile: store.file, vms };
  }
}
