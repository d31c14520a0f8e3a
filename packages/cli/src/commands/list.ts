import { bestAddress } from '@labctl/core/address';
import { labStatus, unknownStatus, type VmStatus } from '@labctl/core/flows/status';
import type { VmRecord } from '@labctl/core/state';
import { Flags } from '@oclif/core';
import { LabctlCommand } from '../base-command.js';
import { knownProvider, labScanner, providerCache } from '../providers.js';
import { renderTable } from '../render.js';

type ListedVm = Pick<VmRecord, 'name' | 'group' | 'provider' | 'host' | 'mac' | 'addresses'> & {
  /** The recorded state ("absent" for a VM only the hypervisor has). */
  state: VmStatus['recorded'];
  address: string | null;
  /** Live (the default): what the hypervisor says now, and how it differs from the state. */
  live?: VmStatus['live'];
  drift?: VmStatus['drift'];
  problem?: string;
};

export interface ListResult {
  lab: string;
  stateFile: string;
  /** False with --offline: only the state file was read. */
  live: boolean;
  vms: ListedVm[];
  unreachable?: Array<{ provider: string; host: string; error: string }>;
}

const DRIFT_TEXT: Record<NonNullable<VmStatus['drift']>, string> = {
  state: 'state differs',
  gone: 'gone from the hypervisor',
  unrecorded: 'not in the state',
};

export default class List extends LabctlCommand<typeof List> {
  static override needsLab = true;
  static override summary = "List the lab's VMs: their group, state and address, and what the hypervisor says now.";
  static override aliases = ['status'];
  static override description =
    "Reads .labctl/state.json and asks each VM's hypervisor for the lab's VMs (read-only), so a VM powered off by hand shows " +
    "as such: the LIVE column is the hypervisor's state, DRIFT says where the two differ (state differs, gone from the " +
    'hypervisor, or a labctl-made VM the state does not know). A hypervisor that cannot be reached leaves LIVE unknown, ' +
    'says why, and exits 1. --offline reads only the state file. The ADDRESS column is the address labctl would hand to ' +
    'Ansible (a routable IPv4 before IPv6; never 0.0.0.0, APIPA or link-local). Run `labctl ip --wait` to refresh addresses.';
  static override examples = [
    {
      description: 'The VMs of the lab in the current directory, checked against the hypervisor',
      command: '<%= config.bin %> <%= command.id %>',
    },
    { description: 'Only the web group, as JSON', command: '<%= config.bin %> <%= command.id %> --group web --json' },
    { description: 'Only the state file, nothing contacted', command: '<%= config.bin %> <%= command.id %> --offline' },
  ];
  static override flags = {
    group: Flags.string({ char: 'g', summary: 'Only VMs of this group.', multiple: true }),
    offline: Flags.boolean({ summary: 'Read only the state file; contact no hypervisor.' }),
  };

  async run(): Promise<ListResult> {
    const lab = await this.labFile();
    const store = this.stateStore();
    const groups = this.flags.group;
    const context = { lab, labDir: this.labDir };
    const cache = providerCache(context);
    const recorded = await store.load(lab.lab);
    const summary = this.flags.offline
      ? { lab: recorded.lab, vms: recorded.vms.map(unknownStatus), unreachable: [] }
      : await labStatus({
          lab: lab.lab,
          store,
          state: recorded,
          provider: (vm) => (knownProvider(vm.provider) ? cache(vm) : undefined),
          scan: labScanner(lab, new Set(recorded.vms.map((vm) => vm.provider)), cache),
        });
    const vms: ListedVm[] = summary.vms
      .filter((vm) => !groups || groups.includes(vm.group))
      .map((vm) => ({
        name: vm.name,
        group: vm.group,
        provider: vm.provider,
        host: vm.host,
        state: vm.recorded,
        mac: vm.record?.mac,
        addresses: vm.record?.addresses ?? [],
        address: bestAddress(vm.record?.addresses ?? []) ?? null,
        ...(this.flags.offline ? {} : { live: vm.live }),
        ...(vm.drift ? { drift: vm.drift } : {}),
        ...(vm.problem ? { problem: vm.problem } : {}),
      }));
    if (vms.length === 0) {
      this.log(`No VMs in lab "${summary.lab}" (${store.file}). Create some with: labctl create --count 3`);
    } else {
      this.log(
        renderTable(vms, [
          { header: 'name', get: (vm) => vm.name },
          { header: 'group', get: (vm) => vm.group },
          { header: 'state', get: (vm) => vm.state },
          ...(this.flags.offline
            ? []
            : [
                { header: 'live', get: (vm: ListedVm) => vm.live },
                { header: 'drift', get: (vm: ListedVm) => (vm.drift ? DRIFT_TEXT[vm.drift] : '') },
              ]),
          { header: 'address', get: (vm) => vm.address },
          { header: 'host', get: (vm) => vm.host },
          { header: 'all addresses', get: (vm) => vm.addresses.join(',') || '-' },
        ]),
      );
    }
    for (const down of summary.unreachable) this.note(`could not ask ${down.provider} at ${down.host}: ${down.error}`);
    if (summary.unreachable.length > 0) process.exitCode = 1;
    return {
      lab: summary.lab,
      stateFile: store.file,
      live: !this.flags.offline,
      vms,
      ...(summary.unreachable.length ? { unreachable: summary.unreachable } : {}),
      ...(this.warnings.length ? { warnings: this.warnings } : {}),
    };
  }
}
