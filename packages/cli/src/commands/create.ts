import type { Check } from '@labctl/core/checks';
import { UsageError } from '@labctl/core/errors';
import { createLab, type CreateSummary } from '@labctl/core/flows/create';
import { checkSeedSettings, makeSeed } from '@labctl/seed/identity';
import { type DryRunAction, type DryRunSummary, dryRunLab } from '@labctl/core/flows/dry-run';
import type { Plan, VmPlan } from '@labctl/core/provider';
import type { LoadedLabFile } from '@labctl/core/spec';
import { discover } from '@labctl/discovery/discover';
import type { InventoryFormat } from '@labctl/inventory/emit';
import { writeInventory } from '@labctl/inventory/service';
import { Flags } from '@oclif/core';
import { LabctlCommand } from '../base-command.js';
import { interruptOnSigint } from '../interrupt.js';
import { createProgress } from '../progress.js';
import { planFlags, planFromFlags } from '../plan-flags.js';
import { definitionFor, makeProvider } from '../providers.js';
import { prose, renderTable } from '../render.js';

export type CreateResult =
  | (CreateSummary & { dryRun: false; inventory?: { output: string; knownHostsFile: string; hosts: number } })
  | {
      dryRun: true;
      lab: string;
      provider: string;
      plan: Plan;
      /** Without --offline: the read-only checks, per VM what the run would do, and VMs beyond the declared count. */
      checks?: Check[];
      actions?: Record<string, DryRunAction>;
      /** The provider calls the run would make (VM names), each on one host. */
      batches?: string[][];
      beyond?: DryRunSummary['beyond'];
      emitted?: { dir: string; files: string[] };
      warnings?: string[];
    };

export default class Create extends LabctlCommand<typeof Create> {
  static override summary =
    "Create the lab's VMs from a golden disk, start them, find their IPs and record their SSH host keys.";
  static override description = prose([
    'Plans the VMs from labctl.yaml and the flags (flags win), checks everything before changing anything (golden image',
    'readable and intact, network exists, no name taken by a VM labctl did not make), then creates the missing VMs in',
    'parallel (--concurrency at a time), each with its own copy-on-write overlay on the golden disk, which is only ever',
    'read. The state in .labctl/state.json is written after every VM. Re-running converges: VMs that exist are kept, missing',
    'ones are made; `--count 12` after 10 adds two. A failure on one VM does not stop the others: the summary says what',
    'failed and why (exit status 1) and a re-run finishes the job. Ctrl-C stops after the VMs in flight; the state stays',
    'consistent for a re-run or `labctl destroy`.',
    '',
    'Without --no-wait, labctl waits until every VM has a usable address (no 0.0.0.0, APIPA, link-local or stale lease) and',
    'answers an SSH handshake, and records its host key; on timeout it says per VM what it saw and what to check.',
  ]);
  static override examples = [
    {
      description: 'Ten VMs from a golden VHD on the local libvirt',
      command: '<%= config.bin %> <%= command.id %> --count 10 --golden /var/lib/labctl/golden.vhd --network labnet',
    },
    {
      description: 'Then write an Ansible inventory (and known_hosts beside it)',
      command: '<%= config.bin %> <%= command.id %> --count 10 --inventory hosts.ini',
    },
    {
      description: 'Check everything the real run would check and show what would change; change nothing',
      command: '<%= config.bin %> <%= command.id %> --count 3 --dry-run',
    },
    {
      description: 'Start a new group (a --group the lab does not have yet is refused as a typo otherwise)',
      command: '<%= config.bin %> <%= command.id %> --group cache --count 2 --new-group',
    },
    {
      description: 'Hyper-V: write the PowerShell scripts and their JSON inputs for review instead of running them',
      command:
        '<%= config.bin %> <%= command.id %> --provider hyperv --host hv01 --count 10 --dry-run --emit-powershell review',
    },
  ];
  static override flags = {
    ...planFlags,
    clone: Flags.string({
      summary: 'linked: qcow2 overlay on the golden disk; full: an independent copy.',
      options: ['linked', 'full'],
    }),
    kernel: Flags.string({ summary: 'Direct kernel boot: kernel file (for images without a bootloader).' }),
    initrd: Flags.string({ summary: 'Direct kernel boot: initrd file.' }),
    cmdline: Flags.string({
      summary: 'Direct kernel boot: kernel command line (identity comes from the seed, not from here).',
    }),
    provider: Flags.string({ summary: 'Hypervisor provider.', options: ['libvirt', 'hyperv'] }),
    uri: Flags.string({
      summary:
        'Also --host. libvirt: connection URI (default: $LIBVIRT_DEFAULT_URI, else qemu:///system), or a name from hosts:. Hyper-V: one host, a name from hosts: or user@host.',
      aliases: ['host'],
    }),
    replace: Flags.boolean({
      summary: 'Several hosts: place failed or half-made VMs anew instead of on the host they were placed on.',
    }),
    concurrency: Flags.integer({ summary: 'VMs created/started at the same time (default 4).', min: 1, max: 256 }),
    start: Flags.boolean({ summary: 'Start the VMs (--no-start: only define them).', allowNo: true, default: true }),
    wait: Flags.boolean({
      summary: 'Wait for addresses and SSH (--no-wait: return once started).',
      allowNo: true,
      default: true,
    }),
    timeout: Flags.integer({ summary: 'Seconds to wait for addresses and SSH (default 300).', min: 1, max: 604_800 }),
    inventory: Flags.string({
      summary:
        'Then write the Ansible inventory to FILE (format from the extension: .ini, .yml/.yaml, .json) and known_hosts beside it.',
    }),
    'dry-run': Flags.boolean({
      summary:
        'Run every read-only check of the real run, print the plan and what would change; change nothing (exit 2 when the real run would be refused).',
    }),
    offline: Flags.boolean({
      summary: 'With --dry-run: only plan; contact no host and run no check.',
      dependsOn: ['dry-run'],
    }),
    'emit-powershell': Flags.string({
      summary:
        'Hyper-V dry run: write the exact scripts, their JSON inputs and run-<host>.ps1 into DIR (no host is contacted).',
      dependsOn: ['dry-run'],
      helpValue: 'DIR',
    }),
  };

  async run(): Promise<CreateResult> {
    const flags = this.flags;
    const lab = await this.labFile();
    const { plan, uri } = await planFromFlags(lab, this.stateStore(), flags, {
      ...(flags.clone ? { clone: flags.clone as 'linked' | 'full' } : {}),
      ...(flags.kernel ? { kernel: flags.kernel } : {}),
      ...(flags.initrd ? { initrd: flags.initrd } : {}),
      ...(flags.cmdline !== undefined ? { cmdline: flags.cmdline } : {}),
      ...(flags.provider ? { provider: flags.provider } : {}),
      ...(flags.uri ? { uri: flags.uri } : {}),
      ...(flags.concurrency ? { concurrency: flags.concurrency } : {}),
      ...(flags.replace ? { replace: true } : {}),
    });
    if (flags['emit-powershell'] && !definitionFor(plan.provider).emitDryRun) {
      throw new UsageError(
        'EMIT_NOT_HYPERV',
        `--emit-powershell is for the hyperv provider; this plan is for ${plan.provider}`,
        {
          hint: 'Add --provider hyperv (or provider: hyperv in labctl.yaml).',
        },
      );
    }
    checkSeedSettings(plan.vms);
    if (flags['dry-run']) return this.dryRun(lab, plan, uri);
    const provider = makeProvider(plan.provider, { lab, labDir: this.labDir, ...(uri ? { connection: uri } : {}) });
    const progress = createProgress({
      json: this.jsonEnabled(),
      subjects: plan.vms.map((vm) => vm.name),
      finishedBy: (event) =>
        (event.phase === 'ssh' && event.status === 'done') ||
        (!flags.wait && event.phase === 'start' && event.status !== 'start') ||
        (!flags.start && event.phase === 'define' && event.status === 'done'),
    });
    const interrupt = interruptOnSigint((message) => this.note(message));
    let summary: CreateSummary;
    try {
      summary = await createLab({
        plan,
        provider,
        store: this.stateStore(),
        events: progress.sink,
        start: flags.start,
        wait: flags.wait,
        timeoutMs: (flags.timeout ?? lab.spec.timeout ?? 300) * 1000,
        discover,
        makeSeed,
        signal: interrupt.signal,
        command: `labctl ${this.argv.join(' ')}`.slice(0, 200),
      });
    } finally {
      await progress.stop();
      interrupt.dispose();
    }
    this.renderChecks(summary.checks);
    this.log(
      renderTable(summary.vms, [
        { header: 'name', get: (vm) => vm.name },
        { header: 'group', get: (vm) => vm.group },
        { header: 'action', get: (vm) => vm.action },
        { header: 'state', get: (vm) => vm.state },
        { header: 'address', get: (vm) => vm.address },
        { header: 'problem', get: (vm) => vm.error ?? '' },
      ]),
    );
    const c = summary.counts;
    this.log(
      `${c.planned} planned: ${c.created} created, ${c.kept} kept, ${c.adopted} adopted, ${c.failed} failed` +
        (flags.start && flags.wait ? `, ${c.reachable} reachable over SSH` : '') +
        ` (${(summary.durationMs / 1000).toFixed(1)} s)`,
    );
    for (const vm of summary.vms) if (vm.hint) this.log(`  ${vm.name}: ${vm.hint}`);
    let inventory: { output: string; knownHostsFile: string; hosts: number } | undefined;
    if (flags.inventory && !summary.interrupted) {
      const written = await writeInventory({
        labDir: this.labDir,
        format: inventoryFormatFor(flags.inventory),
        output: flags.inventory,
      });
      inventory = { output: written.output, knownHostsFile: written.knownHostsFile, hosts: written.hosts };
      this.log(`Inventory: ${written.output} (${written.hosts} hosts; host keys in ${written.knownHostsFile})`);
    }
    if (summary.interrupted) {
      this.note('interrupted: the state is saved; run the same command again to finish, or `labctl destroy --all`');
      process.exitCode = 130;
    } else if (c.failed > 0) {
      process.exitCode = 1;
    }
    return {
      ...summary,
      dryRun: false,
      ...(inventory ? { inventory } : {}),
      ...(this.warnings.length ? { warnings: this.warnings } : {}),
    };
  }

  /** The checks worth a line: the accelerator chosen, and every warning. */
  private renderChecks(checks: readonly Check[]): void {
    const accelerator = checks.find((check) => check.id.endsWith('.accelerator'));
    if (accelerator) this.log(accelerator.message);
    for (const check of checks) if (check.level === 'warning') this.note(check.message);
  }

  private async dryRun(lab: LoadedLabFile, plan: Plan, uri: string | undefined): Promise<CreateResult> {
    const flags = this.flags;
    const offline = flags.offline || Boolean(flags['emit-powershell']);
    const dry = offline
      ? undefined
      : await dryRunLab({
          plan,
          provider: makeProvider(plan.provider, { lab, labDir: this.labDir, ...(uri ? { connection: uri } : {}) }),
          store: this.stateStore(),
        });
    if (dry) this.renderChecks(dry.checks);
    this.log(
      `Plan for lab "${plan.lab}" (${plan.provider}${uri ? ` at ${uri}` : ''}), nothing changed${offline ? ', no host contacted' : ', every read-only check passed'}:`,
    );
    const action = new Map(dry?.vms.map((vm) => [vm.name, vm.action]) ?? []);
    // The placed plan when the hosts were asked: the host each VM goes to.
    const placed: Plan = dry ? { ...plan, vms: dry.vms.map(({ action: _action, ...vm }) => vm) } : plan;
    this.log(
      renderTable(placed.vms, [
        { header: 'name', get: (vm) => vm.name },
        { header: 'group', get: (vm) => vm.group },
        ...(dry
          ? [
              { header: 'action', get: (vm: VmPlan) => action.get(vm.name) },
              { header: 'host', get: (vm: VmPlan) => vm.host },
            ]
          : []),
        { header: 'mac', get: (vm) => vm.mac },
        { header: 'cpus', get: (vm) => vm.cpus },
        { header: 'memory', get: (vm) => `${vm.memoryMiB}M` },
        { header: 'network', get: (vm) => vm.network },
        { header: 'golden', get: (vm) => `${vm.golden} (${vm.clone})` },
      ]),
    );
    for (const vm of dry?.beyond ?? [])
      this.note(
        `${vm.name} (group ${vm.group}, ${vm.state}) is beyond the declared count; create leaves it alone (labctl destroy ${vm.name} removes it)`,
      );
    const result: CreateResult = {
      dryRun: true,
      lab: plan.lab,
      provider: plan.provider,
      plan: placed,
      ...(dry
        ? { checks: dry.checks, actions: Object.fromEntries(action), batches: dry.batches, beyond: dry.beyond }
        : {}),
      ...(this.warnings.length ? { warnings: this.warnings } : {}),
    };
    const emitDir = flags['emit-powershell'];
    if (emitDir) {
      const files =
        (await definitionFor(plan.provider).emitDryRun?.(
          { lab, labDir: this.labDir, ...(uri ? { connection: uri } : {}) },
          plan,
          emitDir,
        )) ?? [];
      this.log(
        `Wrote ${files.length} files to ${emitDir} (nothing was contacted). Review, then run run-<host>.ps1 on each host.`,
      );
      return { ...result, emitted: { dir: emitDir, files } } as CreateResult;
    }
    return result;
  }
}

export function inventoryFormatFor(file: string): InventoryFormat {
  if (/\.ya?ml$/i.test(file)) return 'yaml';
  if (/\.json$/i.test(file)) return 'json';
  return 'ini';
}
