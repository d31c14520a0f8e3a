import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { collectingSink } from '@labctl/core/events';
import { createLab } from '@labctl/core/flows/create';
import type { VmRecord } from '@labctl/core/state';
import { StateStore } from '@labctl/core/state';
import { okFacts } from '@labctl/core/testing/results';
import { LocalPowerShellRunner } from '@labctl/remote/local';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HyperVProvider } from './provider.js';
import { LocalRecordedHost } from './testing/local-host.js';
import { labPlan, numbered, vmPlan } from './testing/plans.js';
import { cloneVm } from '@labctl/core/flows/clone';
import { importVm } from '@labctl/core/flows/bundle';
import { localPath, requirePwsh, simulatedFiles } from './testing/sim-state.js';

/**
 * Day-2 operations on the simulated Hyper-V host under a real PowerShell engine: stop_vms (guest
 * shutdown with a deadline, power-off, Paused-Critical reported as such) and snapshot_vms (a stack of
 * checkpoints per VM, one script per host and batch, AVHDX chains that destroy leaves nothing of).
 */
const gate = requirePwsh('Hyper-V day-2 scripts on the simulator (pwsh)');

describe.skipIf(gate.skip)('Hyper-V day-2: stop and checkpoints', () => {
  let host: LocalRecordedHost;
  const open: HyperVProvider[] = [];
  beforeAll(() => {
    host = new LocalRecordedHost();
  });
  afterAll(async () => {
    await Promise.all(open.map((provider) => provider.close()));
    host?.stop();
  });
  // One lab for the whole file (pwsh starts dominate these tests): the tests run in order, each
  // leaving the host as the next one expects it.
  let shared: Awaited<ReturnType<typeof lab>>;
  beforeAll(async () => {
    host.reset();
    shared = await lab('day2', 3);
  });

  async function lab(name: string, count: number): Promise<{ hv: HyperVProvider; vms: VmRecord[]; store: StateStore }> {
    const hv = new HyperVProvider({
      lab: name,
      hosts: [{ name: 'hv01' }],
      connect: async () => new LocalPowerShellRunner({ env: host.env() }),
    });
    open.push(hv);
    const labDir = mkdtempSync(join(tmpdir(), 'labctl-hv-day2-'));
    const store = new StateStore(labDir);
    const summary = await createLab({
      plan: labPlan(name, numbered('web', count, { host: 'hv01' })),
      provider: hv,
      store,
      start: false,
      timeoutMs: 1_000,
    });
    expect(summary.counts).toMatchObject({ created: count, failed: 0 });
    const vms = JSON.parse(readFileSync(join(labDir, '.labctl', 'state.json'), 'utf8')).vms as VmRecord[];
    okFacts(await hv.start(vms, collectingSink()));
    return { hv, vms, store };
  }

  const runs = (script: string) => host.invocations().filter((entry) => entry.script === script).length;

  it('stop shuts every guest down in one run; a guest that ignores it fails with the deadline, --force or forceAfterTimeout turns it off, a re-run is a no-op, Paused-Critical is named', async () => {
    const { hv, vms } = shared;
    host.scenario({ ignoresShutdown: ['web-02'] });
    const first = await hv.stop(vms, { timeoutS: 2 }, collectingSink());
    expect(runs('stop_vms')).toBe(1);
    expect(first.map((result) => `${result.name}: ${result.ok ? 'ok' : 'failed'}`)).toEqual([
      'web-01: ok',
      'web-02: failed',
      'web-03: ok',
    ]);
    const stuck = first.find((result) => result.name === 'web-02');
    expect(stuck?.ok === false && stuck.error.message).toMatch(/did not shut down within 2 s/);
    expect(host.host().vms.map((vm) => vm.state)).toEqual(['Off', 'Running', 'Off']);

    const forced = okFacts(await hv.stop(vms, { timeoutS: 2, force: true }, collectingSink()));
    expect(forced.map((facts) => [facts.stopped, facts.forced])).toEqual([
      [false, false],
      [true, true],
      [false, false],
    ]);
    expect(host.host().vms.every((vm) => vm.state === 'Off')).toBe(true);
    expect(okFacts(await hv.stop(vms, { timeoutS: 2 }, collectingSink())).every((facts) => !facts.stopped)).toBe(true);

    // With forceAfterTimeout a guest that ignores the shutdown is turned off after the deadline.
    okFacts(await hv.start(vms.slice(1, 2), collectingSink()));
    const [late] = okFacts(await hv.stop(vms.slice(1, 2), { timeoutS: 1, forceAfterTimeout: true }, collectingSink()));
    expect(late).toEqual({ state: 'stopped', stopped: true, forced: true });

    // Paused-Critical (seed 004): reported as such, with the free space of its volume and a hint.
    const simulated = host.host();
    simulated.vms[2]!.state = 'PausedCritical';
    host.reset(simulated, { volumes: [{ name: 'C:\\' }, { name: 'D:\\', freeBytes: 1_048_576 }] });
    const results = await hv.stop(vms, { timeoutS: 5 }, collectingSink());
    const critical = results.find((result) => result.name === 'web-03');
    expect(critical?.ok).toBe(false);
    if (critical?.ok === false) {
      expect(critical.error.code).toBe('HYPERV_PAUSED_CRITICAL');
      expect(critical.error.message).toMatch(/Paused-Critical.*volume D:\\ is full \(0\.00 GiB free\)/);
      expect(critical.error.hint).toMatch(/Free space/);
    }
    expect((await hv.list('day2')).find((vm) => vm.name === 'web-03')?.state).toBe('paused-critical');
    const fixed = host.host();
    fixed.vms[2]!.state = 'Off';
    host.reset(fixed, {});
  });

  it('checkpoints are a stack: refused under the space margin, save x3 in one run per batch, delete the middle one, revert to the newest, and destroy leaves no AVHDX', async () => {
    const { hv } = shared;
    const vms = shared.vms.slice(0, 2);
    // Refused under the free-space margin (nothing made); --type production sets the VM's checkpoint type.
    host.reset(host.host(), { volumes: [{ name: 'D:\\', freeBytes: 512 * 1024 * 1024 }] });
    const [refused] = await hv.snapshot(vms.slice(0, 1), { action: 'save', minFreeBytes: 2 ** 30 }, collectingSink());
    expect(refused?.ok === false && refused.error.message).toMatch(/536870912 bytes free on D:\\.*Paused-Critical/);
    expect(host.host().vms[0]!.checkpoints ?? []).toHaveLength(0);
    const [named] = okFacts(
      await hv.snapshot(
        vms.slice(0, 1),
        { action: 'save', name: 'before-upgrade', type: 'production' },
        collectingSink(),
      ),
    );
    expect(named!.snapshot).toBe('before-upgrade');
    expect((host.host().vms[0] as unknown as { checkpointType?: string }).checkpointType).toBe('Production');
    okFacts(await hv.snapshot(vms.slice(0, 1), { action: 'delete', name: 'before-upgrade' }, collectingSink()));
    const before = runs('snapshot_vms');
    for (let i = 0; i < 3; i++) okFacts(await hv.snapshot(vms, { action: 'save' }, collectingSink()));
    expect(runs('snapshot_vms') - before).toBe(3);
    const listed = okFacts(await hv.snapshot(vms, { action: 'list' }, collectingSink()));
    expect(listed[0]!.snapshots.map((s) => [s.name, s.parent])).toEqual([
      ['snap-1', undefined],
      ['snap-2', 'snap-1'],
      ['snap-3', 'snap-2'],
    ]);
    const avhdx = () => simulatedFiles(host.stateDir).filter((file) => /web-01.*\.avhdx$/i.test(file));
    expect(avhdx()).toHaveLength(3);

    const deleted = okFacts(await hv.snapshot(vms, { action: 'delete', name: 'snap-2' }, collectingSink()));
    expect(deleted[0]!.snapshots.map((s) => [s.name, s.parent])).toEqual([
      ['snap-1', undefined],
      ['snap-3', 'snap-1'],
    ]);
    // The middle checkpoint's disk was merged: one AVHDX fewer, and the chain still leads to the VM's disk.
    expect(avhdx()).toHaveLength(2);
    const simulated = host.host();
    const vm = simulated.vms.find((v) => v.name === 'web-01')!;
    let disk: string | undefined = vm.disks[0];
    const chain: string[] = [];
    while (disk && simulated.files[disk]) {
      chain.push(disk);
      disk = simulated.files[disk]!.parent ?? undefined;
    }
    // current AVHDX -> snap-1's AVHDX -> the VM's own disk -> the golden disk.
    expect(chain).toHaveLength(4);
    expect(chain.at(-2)).toMatch(/web-01\.vhdx$/i);

    const reverted = okFacts(await hv.snapshot(vms, { action: 'revert' }, collectingSink()));
    expect(reverted.map((facts) => [facts.snapshot, facts.state])).toEqual([
      ['snap-3', 'stopped'],
      ['snap-3', 'stopped'],
    ]);
    const missing = await hv.snapshot(vms.slice(0, 1), { action: 'revert', name: 'snap-9' }, collectingSink());
    expect(missing[0]?.ok === false && missing[0].error.message).toMatch(/no checkpoint named snap-9/);

    okFacts(await hv.destroy(vms, {}, collectingSink()));
    expect(simulatedFiles(host.stateDir).filter((file) => /\.(a?vhdx)$/i.test(file) && /web-0[12]/.test(file))).toEqual(
      [],
    );
    host.reset(host.host(), {});
  });

  it("template capture: Convert-VHD merges a stopped VM's chain into a new standalone disk; a running VM, a taken name and a non-host path are refused; a linked clone sits on such a copy and goes with it", async () => {
    const { hv, store } = shared;
    const vms = shared.vms.slice(2);
    const [vm] = vms;
    okFacts(await hv.start(vms, collectingSink()));
    const running = await hv.exportDisk(
      vm!,
      { output: 'D:\\golden\\web-v2.vhdx', format: 'vhdx', flatten: true },
      collectingSink(),
    );
    expect(running.ok === false && running.error.message).toMatch(/the VM is Running.*stop it first/);
    okFacts(await hv.stop(vms, { timeoutS: 5 }, collectingSink()));
    okFacts(await hv.snapshot(vms, { action: 'save' }, collectingSink()));
    const before = host.host();
    const chainTop = before.vms.find((v) => v.name === 'web-03')!.disks[0]!;
    expect(chainTop).toMatch(/\.avhdx$/);
    const captured = await hv.exportDisk(
      vm!,
      { output: 'D:\\golden\\web-v2.vhdx', format: 'vhdx', flatten: true },
      collectingSink(),
    );
    expect(captured.ok, JSON.stringify(captured)).toBe(true);
    const after = host.host();
    const made = after.files['D:\\golden\\web-v2.vhdx'] as unknown as {
      type: string;
      parent?: string;
      mergedFrom: string[];
    };
    // Standalone, read from the whole chain: the checkpoint's AVHDX, the VM's own disk, the golden disk.
    expect(made.type).toBe('Dynamic');
    expect(made.parent).toBeUndefined();
    expect(made.mergedFrom).toHaveLength(3);
    expect(made.mergedFrom[0]).toBe(chainTop);
    if (captured.ok) expect(captured.facts).toMatchObject({ path: 'D:\\golden\\web-v2.vhdx', format: 'vhdx' });
    if (captured.ok) expect(captured.facts.sha256).toMatch(/^[0-9a-f]{64}$/);
    // The VM's chain is as it was; nothing half-written is left.
    expect(after.vms.find((v) => v.name === 'web-03')!.disks).toEqual(
      before.vms.find((v) => v.name === 'web-03')!.disks,
    );
    for (const [path, file] of Object.entries(before.files)) expect(after.files[path], path).toEqual(file);
    expect(simulatedFiles(host.stateDir).filter((file) => file.includes('labctl-partial'))).toEqual([]);
    const taken = await hv.exportDisk(
      vm!,
      { output: 'D:\\golden\\web-v2.vhdx', format: 'vhdx', flatten: true },
      collectingSink(),
    );
    expect(taken.ok === false && taken.error.message).toMatch(/already exists/);
    const local = await hv.exportDisk(
      vm!,
      { output: '/tmp/web-v2.vhdx', format: 'vhdx', flatten: true },
      collectingSink(),
    );
    expect(local.ok === false && local.error.code).toBe('HYPERV_CAPTURE_PATH');

    // A linked clone on a merged copy of that chain, beside the source's disk; destroy takes the base too.
    const clone = (mode: 'linked' | 'full') =>
      cloneVm({
        lab: 'day2',
        store,
        source: 'web-03',
        name: 'web-07',
        mode,
        provider: () => hv,
        planVm: async (source, base) =>
          labPlan('day2', [
            vmPlan('web-07', { host: source.host, group: source.group, golden: base, mac: '00:15:5D:00:07:07' }),
          ]),
        create: (plan, provider) => createLab({ plan, provider, store, start: false, timeoutMs: 1_000 }),
      });
    await expect(clone('full')).rejects.toMatchObject({ code: 'CLONE_FULL_UNSUPPORTED', exitCode: 2 });
    const cloned = await clone('linked');
    expect(cloned.create.counts).toMatchObject({ created: 1, failed: 0 });
    const withClone = host.host();
    const base = cloned.base;
    expect(base).toMatch(/\\web-07\.base\.vhdx$/);
    expect((withClone.files[base] as unknown as { type: string }).type).toBe('Dynamic');
    const cloneVmDisk = withClone.vms.find((v) => v.name === 'web-07')!.disks[0]!;
    expect(withClone.files[cloneVmDisk]).toMatchObject({ type: 'Differencing', parent: base });
    expect(withClone.vms.find((v) => v.name === 'web-03')!.disks).toEqual(
      before.vms.find((v) => v.name === 'web-03')!.disks,
    );
    const records = JSON.parse(readFileSync(join(store.file), 'utf8')).vms as VmRecord[];
    okFacts(
      await hv.destroy(
        records.filter((r) => r.name === 'web-07'),
        {},
        collectingSink(),
      ),
    );
    const gone = simulatedFiles(host.stateDir);
    expect(gone.filter((file) => /web-07/.test(file))).toEqual([]);
    expect(gone).toContain(chainTop);
  });

  it("export writes Export-VM's layout with vm.json and SHA256SUMS (a re-run is a no-op); import copies it back as a VM of a lab with its keys; a changed file is refused", async () => {
    const { hv } = shared;
    const vms = shared.vms.slice(2);
    const [vm] = vms;
    okFacts(await hv.start(vms, collectingSink()));
    const running = await hv.exportVm(vm!, { dir: 'D:\\exports', format: 'bundle' }, collectingSink());
    expect(running.ok === false && running.error.message).toMatch(/stop it first/);
    okFacts(await hv.stop(vms, { timeoutS: 5 }, collectingSink()));
    const exported = await hv.exportVm(vm!, { dir: 'D:\\exports', format: 'bundle' }, collectingSink());
    expect(exported.ok, JSON.stringify(exported)).toBe(true);
    const files = simulatedFiles(host.stateDir).filter((file) => file.startsWith('D:\\exports\\web-03\\'));
    expect(files.some((file) => /\\Virtual Machines\\[0-9A-F-]{36}\.vmcx$/.test(file))).toBe(true);
    expect(files).toContain('D:\\exports\\web-03\\Virtual Hard Disks\\web-03.vhdx');
    expect(files).toContain('D:\\exports\\web-03\\SHA256SUMS');
    const again = await hv.exportVm(vm!, { dir: 'D:\\exports', format: 'bundle' }, collectingSink());
    expect(again.ok && again.facts.written).toBe(false);

    // Into another lab on the same host, with the source gone.
    okFacts(await hv.destroy(vms, {}, collectingSink()));
    const other = new HyperVProvider({
      lab: 'restored',
      hosts: [{ name: 'hv01', path: 'E:\\labs' }],
      connect: async () => new LocalPowerShellRunner({ env: host.env() }),
    });
    open.push(other);
    const store = new StateStore(mkdtempSync(join(tmpdir(), 'labctl-hv-import-')));
    const record = await importVm({ lab: 'restored', store, provider: other, dir: 'D:\\exports\\web-03' });
    expect(record).toMatchObject({ name: 'web-03', group: 'web', state: 'created', provider: 'hyperv' });
    expect(record.ssh.hostKeys).toEqual(vm!.ssh.hostKeys);
    const imported = host.host().vms.find((v) => v.name === 'web-03')!;
    expect(imported.id).not.toBe(vm!.resources?.vmId);
    expect(JSON.parse(imported.notes.replace(/^labctl:/, ''))).toMatchObject({ lab: 'restored', group: 'web' });
    expect(imported.disks[0]).toMatch(/^E:\\labs\\restored\\/);
    await expect(
      importVm({ lab: 'restored', store, provider: other, dir: 'D:\\exports\\web-03' }),
    ).rejects.toMatchObject({ code: 'VM_EXISTS', exitCode: 2 });
    // The imported VM's chain is its own: destroy leaves nothing of it, and the export as it was.
    okFacts(await other.destroy([record], {}, collectingSink()));
    expect(
      simulatedFiles(host.stateDir).filter((file) => file.startsWith('E:\\labs\\restored\\') && /\.a?vhdx$/.test(file)),
    ).toEqual([]);
    expect(simulatedFiles(host.stateDir).filter((file) => file.startsWith('D:\\exports\\web-03\\'))).toEqual(
      expect.arrayContaining(files),
    );

    // A bundle changed after export is refused before anything changes.
    const vmJson = localPath(host.stateDir, 'D:\\exports\\web-03\\vm.json');
    writeFileSync(vmJson, readFileSync(vmJson, 'utf8').replace('"web"', '"db"'));
    await expect(
      importVm({
        lab: 'restored',
        store: new StateStore(mkdtempSync(join(tmpdir(), 'labctl-hv-import-'))),
        provider: other,
        dir: 'D:\\exports\\web-03',
      }),
    ).rejects.toMatchObject({
      code: 'BUNDLE_INVALID',
      exitCode: 2,
      message: expect.stringMatching(/vm.json does not match its SHA-256/),
    });
  });
});
