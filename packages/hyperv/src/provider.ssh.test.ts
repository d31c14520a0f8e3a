import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { collectingSink } from '@labctl/core/events';
import { createLab } from '@labctl/core/flows/create';
import { StateStore } from '@labctl/core/state';
import type { VmRecord } from '@labctl/core/state';
import { okFacts, outcomes } from '@labctl/core/testing/results';
import { requireTestbed } from '@labctl/core/testing/testbed';
import { afterAll, beforeAll, beforeEach, describe, expect, it, onTestFinished } from 'vitest';
import { HyperVProvider } from './provider.js';
import { defaultHost, GiB, GOLDEN, RecordedHosts } from './testing/recorded-hosts.js';
import { labPlan, NASTY_VALUES, numbered, vmPlan } from './testing/plans.js';
import { requirePwsh, simulatedFiles } from './testing/sim-state.js';

/**
 * The provider against simulated Hyper-V hosts over real SSH: placement, idempotent re-runs,
 * destroy never touching the golden disk, preflight refusals, discovery explanations, register.
 */
const gate = requirePwsh('Hyper-V provider tests (sshd with pwsh and the Hyper-V simulator)', {
  root: true,
  commands: ['sshd', 'ssh-keygen', 'unshare'],
});

describe.skipIf(gate.skip)('Hyper-V provider on simulated hosts', () => {
  let hosts: RecordedHosts;
  let hv01: number;
  let hv02: number;
  const open: HyperVProvider[] = [];

  beforeAll(() => {
    hosts = new RecordedHosts(2, 22410);
    [hv01 = 0, hv02 = 0] = hosts.ports;
  });
  afterAll(async () => {
    await Promise.all(open.map((provider) => provider.close()));
    hosts?.stop();
  });
  beforeEach(() => {
    hosts.reset(hv01);
    hosts.reset(hv02);
  });

  function provider(
    lab: string,
    names: string[] = ['hv01'],
    extra: { path?: string; concurrency?: number } = {},
  ): HyperVProvider {
    const ports: Record<string, number> = { hv01, hv02 };
    const made = new HyperVProvider({
      lab,
      hosts: names.map((name) => ({ name, ...extra })),
      connect: (host) => hosts.connect(ports[host.name] ?? 1),
    });
    open.push(made);
    return made;
  }

  it('creates, starts and finds 10 VMs on one host with 4 PowerShell runs over one connection', async () => {
    const hv = provider('lab10');
    const plan = labPlan('lab10', numbered('web', 10, { host: 'hv01' }));
    const logins = hosts.logins(hv01);
    const { checks } = await hv.preflight(plan);
    expect(checks.filter((check) => check.level === 'error')).toEqual([]);
    const records = okFacts(await hv.create(plan.vms, collectingSink()));
    expect(records.map((record) => [record.name, record.state, record.host])).toEqual(
      plan.vms.map((vm) => [vm.name, 'created', 'hv01']),
    );
    expect(outcomes(await hv.start(records, collectingSink()))).toEqual(records.map(() => 'ok'));
    const reports = await hv.adapters(records);
    expect(reports).toHaveLength(10);
    expect(reports.every((report) => report.addresses.some((address) => address.startsWith('192.168.50.')))).toBe(true);
    expect(reports[0]).toMatchObject({ source: 'kvp', mac: expect.stringMatching(/^00:15:5D:/) });
    expect(hosts.invocations(hv01).map((entry) => entry.script)).toEqual([
      'get_host_facts',
      'create_vms',
      'start_vms',
      'get_adapters',
    ]);
    expect(hosts.logins(hv01) - logins).toBe(1);
    const vm = hosts.host(hv01).vms[0];
    expect(vm).toMatchObject({ generation: 2, secureBoot: 'linux', state: 'Running' });
    expect(JSON.parse(vm?.notes.slice('labctl:'.length) ?? '{}')).toEqual({
      lab: 'lab10',
      group: 'web',
      disk: 'D:\\Hyper-V\\Virtual Hard Disks\\lab10\\web-01.vhdx',
    });
  });

  it('through the provider-neutral create flow (labctl create): state written, 10 VMs in 4 PowerShell runs', async () => {
    const hv = provider('flow');
    const labDir = mkdtempSync(join(tmpdir(), 'hyperv-flow-'));
    onTestFinished(() => rmSync(labDir, { recursive: true, force: true }));
    const store = new StateStore(labDir);
    const plan = { ...labPlan('flow', numbered('web', 10, { host: 'hv01' })), concurrency: 10 };
    const summary = await createLab({ plan, provider: hv, store, start: true, wait: false, timeoutMs: 10_000 });
    expect(summary.counts).toMatchObject({ planned: 10, created: 10, failed: 0 });
    expect(hosts.invocations(hv01).map((entry) => entry.script)).toEqual([
      'list_vms',
      'get_host_facts',
      'create_vms',
      'start_vms',
    ]);
    const state = await store.load('flow');
    expect(state.vms.map((vm) => [vm.name, vm.state, vm.host])).toEqual(
      plan.vms.map((vm) => [vm.name, 'running', 'hv01']),
    );
    expect(state.vms[0]?.resources).toMatchObject({
      vmId: expect.any(String),
      vhdPath: 'D:\\Hyper-V\\Virtual Hard Disks\\flow\\web-01.vhdx',
      golden: GOLDEN,
    });
    // The same command again converges without creating anything.
    const again = await createLab({ plan, provider: hv, store, start: true, wait: false, timeoutMs: 10_000 });
    expect(again.counts).toMatchObject({ planned: 10, created: 0, failed: 0 });
    expect(hosts.host(hv01).vms).toHaveLength(10);
  });

  it('re-running create converges: existing VMs are kept, a VM that failed before is created', async () => {
    hosts.reset(hv01, defaultHost(), { failCreate: ['web-02'] });
    const hv = provider('rerun');
    const plan = labPlan('rerun', numbered('web', 3, { host: 'hv01' }));
    const first = await hv.create(plan.vms, collectingSink());
    expect(outcomes(first)).toEqual(['ok', 'HYPERV_CREATE_FAILED', 'ok']);
    expect(first[1]?.ok === false && first[1].error.message).toContain('The operation failed');
    const ids = hosts.host(hv01).vms.map((vm) => vm.id);
    hosts.scenario(hv01, {});
    const events = collectingSink();
    const second = await hv.create(plan.vms, events);
    expect(okFacts(second).map((record) => record.state)).toEqual(['created', 'created', 'created']);
    expect(
      events.events.filter((event) => event.status !== 'start').map((event) => [event.subject, event.status]),
    ).toEqual([
      ['web-01', 'skipped'],
      ['web-02', 'done'],
      ['web-03', 'skipped'],
    ]);
    const after = hosts.host(hv01).vms;
    expect(after).toHaveLength(3);
    expect(after.map((vm) => vm.id)).toEqual(expect.arrayContaining(ids));
  });

  it('places VMs by free memory across two hosts, one connection and one create run per host', async () => {
    hosts.reset(hv01, defaultHost(), { freeMemoryBytes: 16 * GiB });
    hosts.reset(hv02, defaultHost(), { freeMemoryBytes: 64 * GiB });
    const hv = provider('spread', ['hv01', 'hv02']);
    const plan = labPlan('spread', numbered('db', 8, { memoryMiB: 8192 }));
    const { checks, placed } = await hv.preflight(plan);
    expect(checks.filter((check) => check.level === 'error')).toEqual([]);
    // Placement is data in the placed plan: every VM carries its host, one create batch per host.
    expect(placed.batches).toHaveLength(2);
    const records = okFacts(await hv.create(placed.vms, collectingSink()));
    const onHost = (host: string) => records.filter((record) => record.host === host).length;
    // 8 GiB VMs, 14 GiB usable on hv01 vs 62 GiB on hv02: hv02 takes six until both have 14 left, then they alternate.
    expect([onHost('hv01'), onHost('hv02')]).toEqual([1, 7]);
    expect(hosts.host(hv01).vms).toHaveLength(1);
    expect(hosts.host(hv02).vms).toHaveLength(7);
    for (const port of [hv01, hv02])
      expect(hosts.invocations(port).map((entry) => entry.script)).toEqual(['get_host_facts', 'create_vms']);
  });

  it('per-host concurrency splits a host into parallel batches of the placed plan, one create_vms run each', async () => {
    const hv = provider('par', ['hv01'], { concurrency: 3 });
    const placed = hv.placeOffline(labPlan('par', numbered('app', 7, { host: 'hv01' })));
    expect(placed.batches.map((batch) => batch.length).sort()).toEqual([2, 2, 3]);
    const byName = new Map(placed.vms.map((vm) => [vm.name, vm]));
    const records = (
      await Promise.all(
        placed.batches.map(async (batch) =>
          okFacts(
            await hv.create(
              batch.map((name) => byName.get(name)!),
              collectingSink(),
            ),
          ),
        ),
      )
    ).flat();
    expect(records.filter((record) => record.state === 'created')).toHaveLength(7);
    const runs = hosts.invocations(hv01);
    expect(runs.map((entry) => entry.vms).sort()).toEqual([2, 2, 3]);
  });

  it('refuses to place more memory than the hosts have', async () => {
    hosts.reset(hv01, defaultHost(), { freeMemoryBytes: 8 * GiB });
    const { checks } = await provider('big').preflight(
      labPlan('big', numbered('big', 4, { memoryMiB: 4096, host: 'hv01' })),
    );
    expect(checks.find((check) => check.id === 'hyperv.host.memory')).toMatchObject({
      level: 'error',
      subject: 'hv01',
    });
  });

  it('destroy removes VMs and their own disks and never the golden disk, even when state points at it', async () => {
    const hv = provider('gone');
    const records = okFacts(await hv.create(numbered('web', 2, { host: 'hv01' }), collectingSink()));
    // A corrupted record that names the golden disk as the VM's own disk.
    const broken: VmRecord = { ...(records[1] as VmRecord), resources: { ...records[1]?.resources, vhdPath: GOLDEN } };
    const events = collectingSink();
    await hv.destroy([records[0] as VmRecord, broken], {}, events);
    const host = hosts.host(hv01);
    expect(host.vms).toEqual([]);
    // The VM's own Notes marker names its disk, so that one goes; the golden disk the state named
    // stays and the reason is given. The VMs' folders (configuration, checkpoints) go too.
    expect(Object.keys(host.files)).toEqual([GOLDEN]);
    expect(host.files[GOLDEN]).toEqual(defaultHost().files[GOLDEN]);
    expect(simulatedFiles(hosts.stateDir(hv01))).toEqual([GOLDEN]);
    expect(events.events.find((event) => event.subject === 'web-02' && event.status === 'done')?.message).toContain(
      "the VM's labctl marker names another disk",
    );
    // Destroying again: nothing there any more is not an error.
    await hv.destroy([records[0] as VmRecord], {}, collectingSink());
  });

  it('destroy leaves VMs alone that this lab did not make', async () => {
    const other = provider('other-lab');
    await other.create([vmPlan('shared-name', { host: 'hv01' })], collectingSink());
    const hv = provider('mine');
    const [result] = await hv.destroy(
      [
        {
          name: 'shared-name',
          group: 'web',
          provider: 'hyperv',
          host: 'hv01',
          addresses: [],
          ssh: { hostKeys: [] },
          state: 'running',
        },
      ],
      {},
      collectingSink(),
    );
    expect(result).toMatchObject({
      ok: false,
      error: { code: 'HYPERV_DESTROY_FAILED', message: expect.stringContaining('was not made by this lab') },
    });
    expect(hosts.host(hv01).vms.map((vm) => vm.name)).toEqual(['shared-name']);
  });

  it('list shows only the VMs this lab made', async () => {
    await provider('a').create(numbered('a', 2, { host: 'hv01' }), collectingSink());
    await provider('b').create(numbered('b', 1, { host: 'hv01' }), collectingSink());
    const listed = await provider('a').list('a');
    expect(listed.map((record) => [record.name, record.group, record.state, record.host])).toEqual([
      ['a-01', 'web', 'stopped', 'hv01'],
      ['a-02', 'web', 'stopped', 'hv01'],
    ]);
  });

  it('names with quotes, $(), backticks, newlines and unicode arrive on the host unchanged', async () => {
    const hv = provider('nasty');
    const plan = labPlan(
      'nasty',
      NASTY_VALUES.map((name) => vmPlan(name, { host: 'hv01' })),
    );
    const records = okFacts(await hv.create(plan.vms, collectingSink()));
    expect(records.map((record) => record.state)).toEqual(NASTY_VALUES.map(() => 'created'));
    expect(hosts.host(hv01).vms.map((vm) => vm.name)).toEqual(NASTY_VALUES);
    expect((await hv.list('nasty')).map((record) => record.name)).toEqual(NASTY_VALUES);
  });

  describe('preflight refusals (nothing is changed)', () => {
    const refusal = async (
      setup: (host: ReturnType<typeof defaultHost>) => void,
      scenario: Parameters<RecordedHosts['reset']>[2],
      plan = labPlan('pf', numbered('web', 2, { host: 'hv01' })),
    ) => {
      const host = defaultHost();
      setup(host);
      hosts.reset(hv01, host, scenario);
      const { checks } = await provider('pf').preflight(plan);
      expect(hosts.invocations(hv01).map((entry) => entry.script)).toEqual(['get_host_facts']);
      expect(hosts.host(hv01)).toEqual(host);
      return checks;
    };
    const ids = (checks: Array<{ id: string; level: string }>, level: string) =>
      checks.filter((check) => check.level === level).map((check) => check.id);

    it('golden disk missing, switch missing', async () => {
      const checks = await refusal((host) => {
        host.files = {};
        host.switches = [];
      }, {});
      expect(ids(checks, 'error')).toEqual(['hyperv.golden.missing', 'hyperv.switch.missing']);
    });

    it('golden disk that is itself differencing, or attached to a running VM', async () => {
      const checks = await refusal((host) => {
        host.files[GOLDEN] = { type: 'Differencing', parent: 'D:\\Golden\\base.vhdx', size: 40 * GiB, fileSize: GiB };
        host.vms.push({
          name: 'template-vm',
          id: randomUUID(),
          state: 'Running',
          generation: 2,
          memoryBytes: GiB,
          notes: '',
          disks: [GOLDEN],
          adapters: [],
        });
      }, {});
      expect(ids(checks, 'error')).toEqual(['hyperv.golden.differencing', 'hyperv.golden.in-use']);
      expect(checks.find((check) => check.id === 'hyperv.golden.in-use')?.message).toContain('"template-vm"');
    });

    it('a name taken by a VM labctl did not make', async () => {
      const checks = await refusal((host) => {
        host.vms.push({
          name: 'web-02',
          id: randomUUID(),
          state: 'Off',
          generation: 2,
          memoryBytes: GiB,
          notes: 'hand made',
          disks: [],
          adapters: [],
        });
      }, {});
      expect(ids(checks, 'error')).toEqual(['hyperv.name.collision']);
    });

    it('free space below the worst-case growth of the new disks plus the margin', async () => {
      // 2 disks x 40 GiB virtual size + overhead + 2 GiB margin > 60 GiB free.
      const checks = await refusal(() => {}, { freeBytes: 60 * GiB });
      const space = checks.find((check) => check.id === 'hyperv.disk.space');
      expect(space).toMatchObject({ level: 'error', subject: 'hv01:D:\\' });
      expect(space?.message).toContain('60.0 GiB free; 2 new disks can grow to 80.1 GiB');
      const enough = await refusal(() => {}, { freeBytes: 90 * GiB });
      expect(enough.find((check) => check.id === 'hyperv.disk.space')?.level).toBe('ok');
    });

    it('no Hyper-V module; host without the Linux Secure Boot template', async () => {
      expect(ids(await refusal(() => {}, { noHyperV: true }), 'error')).toEqual(['hyperv.host.module']);
      expect(ids(await refusal(() => {}, { secureBootTemplates: ['MicrosoftWindows'] }), 'error')).toEqual([
        'hyperv.secureboot.template',
      ]);
    });

    it('warnings: golden writable by Everyone, Windows Secure Boot template for Generation 2', async () => {
      const checks = await refusal(
        (host) => {
          (host.files[GOLDEN] as { writableBy?: string[] }).writableBy = ['Everyone'];
        },
        {},
        labPlan('pf', [vmPlan('win-01', { host: 'hv01', options: { secureBoot: 'windows' } })]),
      );
      expect(ids(checks, 'error')).toEqual([]);
      expect(ids(checks, 'warning')).toEqual(['hyperv.golden.writable', 'hyperv.secureboot.windows']);
    });

    it('an unreachable host is an error check, not a crash', async () => {
      const hv = new HyperVProvider({ lab: 'pf', hosts: [{ name: 'hv09' }], connect: () => hosts.connect(1) });
      open.push(hv);
      const { checks } = await hv.preflight(labPlan('pf', numbered('web', 1, { host: 'hv09' })));
      expect(checks).toEqual([
        expect.objectContaining({ id: 'hyperv.host.reachable', level: 'error', subject: 'hv09' }),
      ]);
    });
  });

  it('discovery explains empty KVP answers', async () => {
    hosts.reset(hv01, defaultHost(), { kvp: { 'web-02': 'nocontact', 'web-03': 'disabled', 'web-04': 'late' } });
    const hv = provider('kvp');
    const records = okFacts(await hv.create(numbered('web', 5, { host: 'hv01' }), collectingSink()));
    const off = await hv.adapters(records.slice(4));
    expect(off[0]?.problem).toBe('the VM is Off; Hyper-V reports guest addresses only while it runs');
    await hv.start(records.slice(0, 4), collectingSink());
    const reports = await hv.adapters(records);
    const problem = (name: string) => reports.find((report) => report.vm === name)?.problem;
    expect(problem('web-01')).toBeUndefined();
    expect(problem('web-02')).toContain('hyperv-daemons');
    expect(problem('web-02')).toContain('template step `hyperv-daemons`');
    expect(problem('web-03')).toContain(
      "Get-VMIntegrationService -VMName 'web-03' | Where-Object { $_.Id -like '*\\2A34B1C2-FD73-4043-8A5B-DD2159BC743F' } | Enable-VMIntegrationService",
    );
    expect(problem('web-04')).toMatch(/^no address reported yet \(up \d+ s\)/);
  });

  it('register: in place, fixing a missing switch and a moved disk; never copies or deletes disks', async () => {
    const config = 'E:\\Moved\\Virtual Machines\\5D2B7A9C-1111-4C3B-8D7E-0A1B2C3D4E5F.vmcx';
    const stuck = 'E:\\Moved\\Virtual Machines\\6E3C8B0D-2222-4C3B-8D7E-0A1B2C3D4E5F.vmcx';
    const host = defaultHost();
    host.files['F:\\NewDisks\\app.vhdx'] = { type: 'Dynamic', size: 20 * GiB, fileSize: 5 * GiB };
    host.unregistered[config] = { name: 'app01', switch: 'OldSwitch', disks: ['C:\\Old\\app.vhdx'] };
    host.unregistered[stuck] = { name: 'app02', switch: 'LabSwitch', disks: ['C:\\Old\\gone.vhdx'] };
    hosts.reset(hv01, host);
    const driver = await provider('reg').driver('hv01');
    const dry = await driver.registerVms({
      paths: [config],
      vhdDir: 'F:\\NewDisks',
      switch: 'LabSwitch',
      dryRun: true,
    });
    expect(dry[0]).toMatchObject({ ok: true, registered: false });
    expect(hosts.host(hv01).vms).toEqual([]);
    const results = await driver.registerVms({
      paths: [config, stuck],
      vhdDir: 'F:\\NewDisks',
      switch: 'LabSwitch',
      dryRun: false,
    });
    expect(results[0]).toMatchObject({
      ok: true,
      registered: true,
      name: 'app01',
      fixes: [
        { problem: "Could not find Ethernet switch 'OldSwitch'.", fix: 'connected to switch LabSwitch' },
        {
          problem: "Virtual hard disk file 'C:\\Old\\app.vhdx' not found.",
          fix: 'disk path set to F:\\NewDisks\\app.vhdx',
        },
      ],
    });
    expect(results[1]).toMatchObject({
      ok: false,
      registered: false,
      remaining: [expect.objectContaining({ messageId: 40010, sourceType: 'HardDiskDrive' })],
    });
    const after = hosts.host(hv01);
    expect(after.vms.map((vm) => [vm.name, vm.disks])).toEqual([['app01', ['F:\\NewDisks\\app.vhdx']]]);
    expect(after.files).toEqual(host.files);
    // Registering again is a no-op.
    expect((await driver.registerVms({ paths: [config], dryRun: false }))[0]).toMatchObject({
      ok: true,
      already: true,
    });
  });
});
