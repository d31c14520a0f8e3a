import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { GOLDEN } from '@labctl/hyperv/testing/recorded-hosts';
import { LocalRecordedHost } from '@labctl/hyperv/testing/local-host';
import { requirePwsh } from '@labctl/hyperv/testing/sim-state';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import Create, { type CreateResult } from '../create.js';
import Destroy from '../destroy.js';
import Ip from '../ip.js';

/**
 * `labctl create/ip/destroy` with a Hyper-V host whose address is `local`: labctl runs powershell.exe
 * itself as a child process (no SSH), found on PATH. Here that is the simulated host
 * (scripts/testbed/hyperv-local.sh: a real pwsh with the Hyper-V simulator module), the same one the
 * sshd testbed uses as its forced command.
 */
const cliRoot = resolve(import.meta.dirname, '../../..');
const gate = requirePwsh('labctl create on a local Hyper-V host (pwsh with the Hyper-V simulator)');

describe.skipIf(gate.skip)('labctl create/ip/destroy on the local Hyper-V host (address: local)', () => {
  let host: LocalRecordedHost;
  let lab: string;
  const path = process.env.PATH;
  beforeAll(() => {
    host = new LocalRecordedHost();
    process.env.PATH = host.env().PATH;
    lab = mkdtempSync(join(tmpdir(), 'labctl-hyperv-local-'));
    writeFileSync(
      join(lab, 'labctl.yaml'),
      [
        'lab: hvlocal',
        'provider: hyperv',
        'defaults:',
        `  golden: '${GOLDEN}'`,
        '  network: LabSwitch',
        '  memory: 1G',
        'groups:',
        '  web: {}',
        'hosts:',
        '  - { name: hv01, address: local }',
        '',
      ].join('\n'),
    );
  });
  afterAll(() => {
    process.env.PATH = path;
    host?.stop();
    if (lab) rmSync(lab, { recursive: true, force: true });
  });

  it('creates, starts and finds 10 VMs in 5 local PowerShell runs, logs them, and destroys them', async () => {
    vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const created = (await Create.run(
      ['--count', '10', '--no-wait', '--concurrency', '1', '--json', '--lab-dir', lab],
      cliRoot,
    )) as CreateResult;
    const ips = (await Ip.run(['--json', '--lab-dir', lab], cliRoot)) as {
      vms: Array<{ name: string; address: string | null }>;
    };
    if (created.dryRun) throw new Error('not a dry run');
    expect(created.counts).toMatchObject({ planned: 10, created: 10, failed: 0 });
    expect(ips.vms.filter((vm) => vm.address?.startsWith('192.168.50.'))).toHaveLength(10);
    expect(host.invocations().map((entry) => [entry.script, entry.shell])).toEqual(
      ['list_vms', 'get_host_facts', 'create_vms', 'start_vms', 'get_adapters'].map((script) => [
        script,
        'powershell.exe',
      ]),
    );
    const state = JSON.parse(await readFile(join(lab, '.labctl', 'state.json'), 'utf8'));
    expect(state.vms.map((vm: { host: string; state: string }) => [vm.host, vm.state])).toEqual(
      Array(10).fill(['hv01', 'running']),
    );
    expect(host.host().vms.map((vm) => vm.adapters[0]?.mac)).toEqual(Array(10).fill(expect.stringMatching(/^00155D/)));
    const log = (await readFile(join(lab, '.labctl', 'powershell.log'), 'utf8'))
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(
      log.map((entry: { script: string; host: string; exit: number }) => [entry.script, entry.host, entry.exit]),
    ).toContainEqual(['start_vms', 'hv01', 0]);

    await Destroy.run(['--all', '--json', '--lab-dir', lab], cliRoot);
    vi.restoreAllMocks();
    expect(host.host().vms).toEqual([]);
    expect(Object.keys(host.host().files)).toEqual([GOLDEN]);
  });

  it('--host local without hosts: records host "local", and a later ip/destroy without the flag finds the VMs again', async () => {
    const bare = mkdtempSync(join(tmpdir(), 'labctl-hyperv-local-'));
    try {
      writeFileSync(
        join(bare, 'labctl.yaml'),
        ['lab: hvbare', 'provider: hyperv', 'defaults:', `  golden: '${GOLDEN}'`, '  network: LabSwitch', ''].join(
          '\n',
        ),
      );
      vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
      await Create.run(['--count', '2', '--no-wait', '--host', 'local', '--json', '--lab-dir', bare], cliRoot);
      const ips = (await Ip.run(['--json', '--lab-dir', bare], cliRoot)) as {
        vms: Array<{ name: string; address: string | null }>;
      };
      const destroyed = (await Destroy.run(['--all', '--json', '--lab-dir', bare], cliRoot)) as {
        vms: Array<{ name: string; result: string }>;
      };
      vi.restoreAllMocks();
      expect(ips.vms.map((vm) => [vm.name, vm.address?.startsWith('192.168.50.')])).toEqual([
        ['vm-01', true],
        ['vm-02', true],
      ]);
      expect(destroyed.vms.map((vm) => vm.result)).toEqual(['destroyed', 'destroyed']);
      expect(host.host().vms.filter((vm) => vm.name.startsWith('vm-'))).toEqual([]);
    } finally {
      vi.restoreAllMocks();
      rmSync(bare, { recursive: true, force: true });
    }
  });
});
