import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { collectingSink } from '@labctl/core/events';
import { createLab } from '@labctl/core/flows/create';
import { StateStore } from '@labctl/core/state';
import { okFacts } from '@labctl/core/testing/results';
import { LocalPowerShellRunner } from '@labctl/remote/local';
import { makeSeedWith } from '@labctl/seed/identity';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { redactInput } from './connect.js';
import { HyperVProvider } from './provider.js';
import { LocalRecordedHost } from './testing/local-host.js';
import { labPlan, numbered } from './testing/plans.js';
import { localPath, requirePwsh } from './testing/sim-state.js';

/**
 * Each Hyper-V VM's cloud-init seed: made by labctl (keys pinned in the state first), carried as a
 * VHDX in create_vms's input, written beside the VM's disk and attached as its second disk in the
 * same run, and removed with the VM. The VHDX is opened by libvhdi and by qemu-img; the ISO inside
 * by xorriso: three readers that are not labctl's.
 */
const gate = requirePwsh('Hyper-V seed disks on the simulator (pwsh)', {
  commands: ['vhdiinfo', 'qemu-img', 'xorriso'],
});

describe.skipIf(gate.skip)('Hyper-V: a seed disk per VM, in the create_vms batch', () => {
  let host: LocalRecordedHost;
  const open: HyperVProvider[] = [];
  beforeAll(() => {
    host = new LocalRecordedHost();
  });
  afterAll(async () => {
    await Promise.all(open.map((provider) => provider.close()));
    host?.stop();
  });
  beforeEach(() => host.reset());

  function provider(lab: string): HyperVProvider {
    const made = new HyperVProvider({
      lab,
      hosts: [{ name: 'hv01' }],
      connect: async () => new LocalPowerShellRunner({ env: host.env() }),
    });
    open.push(made);
    return made;
  }

  it('create attaches each seed as a second disk; libvhdi, qemu-img and xorriso read back the pinned key; destroy removes it', async () => {
    const labDir = mkdtempSync(join(tmpdir(), 'labctl-hv-seed-'));
    const hv = provider('seeded');
    const plan = labPlan(
      'seeded',
      numbered('web', 3, { host: 'hv01', cloudInit: { hostKeyTypes: ['ed25519'] }, ssh: { user: 'root', port: 22 } }),
    );
    const authorized = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl';
    const store = new StateStore(labDir);
    const summary = await createLab({
      plan,
      provider: hv,
      store,
      start: false,
      timeoutMs: 1_000,
      makeSeed: (vm) => makeSeedWith(vm, { authorizedKeys: [authorized] }),
    });
    expect(summary.counts).toMatchObject({ planned: 3, created: 3, failed: 0 });
    // One create_vms run for the batch: the seeds travel inside its input.
    expect(host.invocations().filter((entry) => entry.script === 'create_vms')).toHaveLength(1);
    const state = JSON.parse(readFileSync(join(labDir, '.labctl', 'state.json'), 'utf8'));
    expect(JSON.stringify(state)).not.toContain('PRIVATE KEY');

    const simulated = host.host();
    for (const record of state.vms) {
      const vm = simulated.vms.find((v) => v.name === record.name)!;
      expect(vm.disks).toHaveLength(2);
      expect(vm.disks[1]).toMatch(new RegExp(`\\\\${record.name}\\.seed\\.vhdx$`));
      expect(JSON.parse(vm.notes.replace(/^labctl:/, ''))).toMatchObject({ seed: vm.disks[1] });
      const vhdx = localPath(host.stateDir, vm.disks[1]!);
      expect(execFileSync('vhdiinfo', [vhdx], { encoding: 'utf8' })).toMatch(/Format:\s*2\.0|VHDX|version\s*:\s*2/i);
      const work = mkdtempSync(join(tmpdir(), 'labctl-hv-seed-read-'));
      execFileSync('qemu-img', ['convert', '-f', 'vhdx', '-O', 'raw', vhdx, join(work, 'seed.raw')]);
      execFileSync(
        'xorriso',
        ['-osirrox', 'on', '-indev', join(work, 'seed.raw'), '-extract', '/', join(work, 'files')],
        { stdio: 'ignore' },
      );
      expect(readdirSync(join(work, 'files')).sort()).toEqual(
        expect.arrayContaining(['meta-data', 'network-config', 'user-data']),
      );
      expect(readFileSync(join(work, 'files', 'meta-data'), 'utf8')).toContain(`local-hostname: ${record.name}`);
      expect(readFileSync(join(work, 'files', 'labctl-ssh-host-ed25519-key.pub'), 'utf8').trim()).toBe(
        record.ssh.hostKeys[0],
      );
      expect(readFileSync(join(work, 'files', 'labctl-authorized-keys'), 'utf8').trim()).toBe(authorized);
    }

    const removed = okFacts(await hv.destroy(state.vms, {}, collectingSink()));
    expect(removed).toHaveLength(3);
    for (const record of state.vms) {
      const vm = simulated.vms.find((v) => v.name === record.name)!;
      expect(existsSync(localPath(host.stateDir, vm.disks[1]!)), vm.disks[1]).toBe(false);
      expect(existsSync(localPath(host.stateDir, vm.disks[0]!))).toBe(false);
    }
  });

  it('a VM that fails after its seed was written leaves no seed behind', async () => {
    host.reset(undefined, { fail: { 'Set-VM': 'AccessDenied' } });
    const hv = provider('seedfail');
    const plan = labPlan('seedfail', numbered('db', 1, { host: 'hv01', cloudInit: { hostKeyTypes: ['ed25519'] } }));
    const vm = { ...plan.vms[0]!, seed: await makeSeedWith(plan.vms[0]!, { authorizedKeys: [] }) };
    const [result] = await hv.create([vm], collectingSink());
    expect(result?.ok).toBe(false);
    const folder = localPath(host.stateDir, 'D:\\');
    const leftovers = execFileSync('find', [folder, '-name', '*.seed.vhdx'], { encoding: 'utf8' }).trim();
    expect(leftovers).toBe('');
  });

  it('--debug logs never show a seed: powershell.log and stderr get its size only', () => {
    const input = JSON.stringify({
      lab: 'x',
      vms: [{ name: 'a', seed: 'H4sIAAAA'.repeat(100), seedFile: 'a.seed.vhdx' }],
    });
    const shown = redactInput(input);
    expect(shown).not.toContain('H4sIAAAA');
    expect(JSON.parse(shown).vms[0]).toEqual({
      name: 'a',
      seed: '<seed disk: 800 base64 characters with private host keys, not shown>',
      seedFile: 'a.seed.vhdx',
    });
  });
});
