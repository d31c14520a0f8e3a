import { cloneVm, type CloneSummary } from '@labctl/core/flows/clone';
import { createLab } from '@labctl/core/flows/create';
import { deterministicMac } from '@labctl/core/plan';
import { discover } from '@labctl/discovery/discover';
import { makeSeed } from '@labctl/seed/identity';
import { Args, Flags } from '@oclif/core';
import { LabctlCommand } from '../base-command.js';
import { interruptOnSigint } from '../interrupt.js';
import { planFromFlags } from '../plan-flags.js';
import { createProgress } from '../progress.js';
import { macPrefixFor, providerCache } from '../providers.js';
import { prose, renderTable } from '../render.js';

export default class Clone extends LabctlCommand<typeof Clone> {
  static override needsLab = true;
  static override summary =
    'Make a new VM of the lab from an existing one, with its own name, MAC, host keys and identity.';
  static override description = prose([
    "Copies SRC's disk (SRC stopped, or one of its snapshots with --from-snapshot) to a frozen base that nothing writes,",
    "then makes NEW like `labctl create` makes a VM of SRC's group: its own MAC, a new seed (host keys pinned before it",
    "boots, a new instance-id so cloud-init runs again), a state record, then start and SSH. --linked (default): NEW's",
    "disk is an overlay on the base. --full: a standalone copy (libvirt). The base is removed with NEW. SRC's disk and",
    'the golden image are only read. The clone takes an address by DHCP. libvirt (local) and Hyper-V (linked).',
  ]);
  static override examples = [
    { description: 'A linked clone of a stopped VM', command: '<%= config.bin %> <%= command.id %> web-01 web-07' },
    {
      description: 'A full copy of a snapshot, left stopped',
      command: '<%= config.bin %> <%= command.id %> db-01 db-test --full --from-snapshot before-upgrade --no-start',
    },
  ];
  static override args = {
    source: Args.string({ description: 'The VM to copy.', required: true }),
    name: Args.string({ description: "The new VM's name.", required: true }),
  };
  static override flags = {
    linked: Flags.boolean({ summary: 'An overlay on a frozen copy of the source (default).', exclusive: ['full'] }),
    full: Flags.boolean({ summary: 'A standalone copy.', exclusive: ['linked'] }),
    'from-snapshot': Flags.string({
      summary: 'Copy this snapshot of the source instead of its current disk (it may run).',
    }),
    start: Flags.boolean({ summary: 'Start the clone.', default: true, allowNo: true }),
    wait: Flags.boolean({ summary: 'Wait until the clone answers SSH.', default: true, allowNo: true }),
    timeout: Flags.integer({ summary: 'Seconds to wait for SSH (default 300).', min: 1, max: 604_800 }),
  };

  async run(): Promise<CloneSummary> {
    const lab = await this.labFile();
    const store = this.stateStore();
    const mode = this.flags.full ? 'full' : 'linked';
    const name = this.args.name;
    const progress = createProgress({ json: this.jsonEnabled(), subjects: [], finishedBy: () => false });
    const interrupt = interruptOnSigint((message) => this.note(message));
    let summary: CloneSummary;
    try {
      summary = await cloneVm({
        lab: lab.lab,
        store,
        source: this.args.source,
        name,
        mode,
        ...(this.flags['from-snapshot'] ? { fromSnapshot: this.flags['from-snapshot'] } : {}),
        provider: providerCache({ lab, labDir: this.labDir }),
        planVm: async (source, base) => {
          // Planned as a VM of the source's group, on the source's host, then given its own name and MAC.
          const { plan } = await planFromFlags(
            lab,
            store,
            { group: source.group, count: 1, 'new-group': true },
            { provider: source.provider, uri: source.host, golden: base, clone: mode },
          );
          const { address: _address, ...vm } = plan.vms[0]!;
          return {
            ...plan,
            vms: [
              {
                ...vm,
                name,
                mac: deterministicMac(lab.lab, name, macPrefixFor(source.provider)),
                golden: base,
                clone: mode,
              },
            ],
          };
        },
        create: (plan, provider) =>
          createLab({
            plan,
            provider,
            store,
            events: progress.sink,
            start: this.flags.start,
            wait: this.flags.wait,
            timeoutMs: (this.flags.timeout ?? lab.spec.timeout ?? 300) * 1000,
            discover,
            makeSeed,
            signal: interrupt.signal,
            command: `labctl clone ${this.args.source} ${name}`,
          }),
        events: progress.sink,
      });
    } finally {
      interrupt.dispose();
      await progress.stop();
    }
    const vm = summary.create.vms.find((item) => item.name === name);
    this.log(
      renderTable(summary.create.vms, [
        { header: 'name', get: (item) => item.name },
        { header: 'action', get: (item) => item.action },
        { header: 'state', get: (item) => item.state },
        { header: 'address', get: (item) => item.address },
        { header: 'problem', get: (item) => item.error ?? '' },
      ]),
    );
    this.log(`${name} is a ${summary.mode} clone of ${summary.source}, from ${summary.base}`);
    if (vm?.hint) this.log(`  ${name}: ${vm.hint}`);
    if (summary.create.interrupted) process.exitCode = 130;
    else if (
      !vm ||
      vm.action === 'failed' ||
      (this.flags.start && this.flags.wait && summary.create.counts.reachable < 1)
    )
      process.exitCode = 1;
    return summary;
  }
}
