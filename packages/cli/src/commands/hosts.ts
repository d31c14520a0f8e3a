import { UsageError } from '@labctl/core/errors';
import type { HostReport } from '@labctl/core/provider';
import { LabctlCommand } from '../base-command.js';
import { DEFAULT_PROVIDER, makeProvider } from '../providers.js';
import { prose, renderTable } from '../render.js';

export interface HostsResult {
  lab: string;
  hosts: Array<HostReport & { labVms: number }>;
}

const GiB = 1024 ** 3;
const gib = (bytes: number | undefined) => (bytes === undefined ? '' : `${(bytes / GiB).toFixed(1)} GiB`);

export default class Hosts extends LabctlCommand<typeof Hosts> {
  static override needsLab = true;
  static override summary = "Show the lab's hosts: reachable, versions, free memory and space, VMs.";
  static override description = prose([
    'Asks every host of hosts: in labctl.yaml (or the lab’s one connection) at once, read-only. FREE MEM counts the',
    'page cache as free (the kernel gives it back); FREE DISK is where the VMs’ disks go (the disk directory or pool).',
    'LAB VMS are the lab’s VMs the state records on the host; VMS are all the domains it has, of any lab. A host that',
    'cannot be reached says why, and the command exits 1.',
  ]);
  static override examples = [
    { description: 'Every host', command: '<%= config.bin %> <%= command.id %>' },
    { description: 'As JSON, for scripts', command: '<%= config.bin %> <%= command.id %> --json' },
  ];

  async run(): Promise<HostsResult> {
    const lab = await this.labFile();
    const provider = lab.spec.provider ?? DEFAULT_PROVIDER;
    const names = (lab.spec.hosts ?? []).map((host) => host.name);
    const state = await this.stateStore().read();
    const reports = await Promise.all(
      (names.length > 0 ? names : ['local']).map(async (name) => {
        const made = makeProvider(provider, { lab, labDir: this.labDir, connection: name });
        if (!made.hostReport)
          throw new UsageError('HOSTS_UNSUPPORTED', `labctl hosts does not read ${provider} hosts yet`, {
            hint: 'It is built for libvirt hosts.',
          });
        const report = await made.hostReport();
        return { ...report, name, labVms: (state?.vms ?? []).filter((vm) => vm.host === report.name).length };
      }),
    );
    this.log(
      renderTable(reports, [
        { header: 'host', get: (host) => host.name },
        { header: 'reachable', get: (host) => (host.reachable ? 'yes' : 'no') },
        { header: 'libvirt', get: (host) => host.versions?.libvirt ?? '' },
        { header: 'hypervisor', get: (host) => host.versions?.hypervisor ?? '' },
        { header: 'free mem', get: (host) => gib(host.freeMemoryBytes) },
        { header: 'free disk', get: (host) => gib(host.freeDiskBytes) },
        { header: 'vms', get: (host) => (host.vms === undefined ? '' : String(host.vms)) },
        { header: 'lab vms', get: (host) => String(host.labVms) },
        ...(reports.some((host) => host.migration)
          ? [
              {
                header: 'migration',
                get: (host: HostsResult['hosts'][number]) =>
                  !host.migration
                    ? ''
                    : host.migration.ready
                      ? 'ready'
                      : `${host.migration.problems.length} problem(s)`,
              },
            ]
          : []),
        { header: 'problem', get: (host) => host.error ?? '' },
      ]),
    );
    for (const host of reports) if (host.hint) this.log(`  ${host.name}: ${host.hint}`);
    for (const host of reports)
      for (const { problem, fix } of host.migration?.problems ?? []) this.log(`  ${problem}. Fix: ${fix}`);
    if (reports.some((host) => !host.reachable)) process.exitCode = 1;
    return { lab: lab.lab, hosts: reports };
  }
}
