import { type AddressesSummary, refreshAddresses } from '@labctl/core/flows/addresses';
import { UsageError } from '@labctl/core/errors';
import { discover } from '@labctl/discovery/discover';
import { Args, Flags } from '@oclif/core';
import { LabctlCommand } from '../base-command.js';
import { interruptOnSigint } from '../interrupt.js';
import { createProgress } from '../progress.js';
import { providerCache } from '../providers.js';
import { prose, renderTable } from '../render.js';

export default class Ip extends LabctlCommand<typeof Ip> {
  static override needsLab = true;
  static override summary = "Show the lab's VM addresses as the hypervisor sees them; --wait until they answer SSH.";
  static override description = prose([
    "Asks the hypervisor (libvirt: DHCP leases, then the guest agent, then the neighbour table) for each VM's addresses,",
    'drops unusable ones (0.0.0.0, APIPA 169.254/16, IPv6 link-local, stale leases of a destroyed VM with the same MAC)',
    'and records them in the state. With --wait it polls with backoff until every VM answers an SSH handshake or --timeout',
    'passes; host keys already recorded must match. On timeout it says per VM what it saw and what to check (exit 1).',
  ]);
  static override examples = [
    { description: 'Addresses right now', command: '<%= config.bin %> <%= command.id %>' },
    {
      description: 'Wait up to two minutes for two VMs to answer SSH',
      command: '<%= config.bin %> <%= command.id %> vm-01 vm-02 --wait --timeout 120',
    },
    { description: 'For scripts', command: '<%= config.bin %> <%= command.id %> --json' },
  ];
  static override strict = false;
  static override args = { names: Args.string({ description: 'VM names (default: all of the lab).' }) };
  static override flags = {
    wait: Flags.boolean({ summary: 'Wait until each VM has an address and answers SSH.' }),
    timeout: Flags.integer({ summary: 'Seconds to wait with --wait (default 300).', min: 1, max: 604_800 }),
  };

  async run(): Promise<AddressesSummary> {
    const names = this.argv.filter(
      (arg, i) => !arg.startsWith('-') && !['--timeout', '--lab-dir'].includes(this.argv[i - 1] ?? ''),
    );
    const lab = await this.labFile();
    const progress = createProgress({ json: this.jsonEnabled(), subjects: [], finishedBy: () => false });
    const interrupt = interruptOnSigint((message) => this.note(message));
    let summary: AddressesSummary;
    try {
      summary = await refreshAddresses({
        lab: lab.lab,
        store: this.stateStore(),
        provider: providerCache({ lab, labDir: this.labDir }),
        discover,
        names,
        wait: this.flags.wait,
        timeoutMs: (this.flags.timeout ?? lab.spec.timeout ?? 300) * 1000,
        events: this.flags.wait ? progress.sink : () => {},
        signal: interrupt.signal,
      });
    } finally {
      interrupt.dispose();
      await progress.stop();
    }
    if (summary.unknown.length > 0) {
      throw new UsageError('VM_UNKNOWN', `no VM named ${summary.unknown.join(', ')} in lab "${summary.lab}"`, {
        hint: "labctl list shows the lab's VMs.",
      });
    }
    if (summary.vms.length === 0) this.log(`No VMs in lab "${summary.lab}".`);
    else
      this.log(
        renderTable(summary.vms, [
          { header: 'name', get: (vm) => vm.name },
          { header: 'address', get: (vm) => vm.address },
          { header: 'status', get: (vm) => vm.status },
          { header: 'seen', get: (vm) => vm.detail },
        ]),
      );
    for (const vm of summary.vms)
      if (vm.hint && vm.status !== 'reachable' && vm.status !== 'addressed') this.log(`  ${vm.name}: ${vm.hint}`);
    if (
      summary.vms.some((vm) => vm.status === 'failed') ||
      (this.flags.wait && summary.vms.some((vm) => vm.status !== 'reachable'))
    )
      process.exitCode = 1;
    return summary;
  }
}
