import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { createProgress } from '../progress.js';

/** The built binary for what needs no hypervisor: plans, refusals, help. Real VMs: test/e2e/kvm-create.test.ts. */
const bin = resolve(import.meta.dirname, '../../bin/run.js');

async function labctl(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)('node', [bin, ...args], {
      env: { ...process.env, LIBVIRT_DEFAULT_URI: '', ...env },
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('labctl create / destroy / ip (no hypervisor needed)', { timeout: 90_000 }, () => {
  it('--dry-run --offline prints the plan from the lab file and flags, and changes nothing', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'labctl-create-'));
    await writeFile(
      join(dir, 'labctl.yaml'),
      'lab: dry\ndefaults: { golden: g.vhd, memory: 1G }\ngroups: { web: { count: 2 } }\n',
    );
    const run = await labctl(['create', '--dry-run', '--offline', '--json', '--lab-dir', dir, '--memory', '256']);
    expect(run.code, run.stderr).toBe(0);
    const result = JSON.parse(run.stdout);
    expect(result.dryRun).toBe(true);
    expect(
      result.plan.vms.map((vm: { name: string; memoryMiB: number; golden: string }) => [
        vm.name,
        vm.memoryMiB,
        vm.golden,
      ]),
    ).toEqual([
      ['web-01', 256, join(dir, 'g.vhd')],
      ['web-02', 256, join(dir, 'g.vhd')],
    ]);
    const human = await labctl(['create', '--dry-run', '--offline', '--lab-dir', dir]);
    expect(human.stdout).toMatch(/^web-01\s+web\s+52:54:00:/m);
    // Hyper-V: the same VMs get static MACs in Microsoft's range, in the plan and in the create_vms input.
    const out = join(dir, 'emitted');
    const hyperv = await labctl([
      'create',
      '--dry-run',
      '--json',
      '--provider',
      'hyperv',
      '--host',
      'hv01',
      '--emit-powershell',
      out,
      '--lab-dir',
      dir,
    ]);
    expect(hyperv.code, hyperv.stderr).toBe(0);
    const macs = JSON.parse(hyperv.stdout).plan.vms.map((vm: { mac: string }) => vm.mac);
    expect(macs).toEqual([
      expect.stringMatching(/^00:15:5d(:[0-9a-f]{2}){3}$/),
      expect.stringMatching(/^00:15:5d(:[0-9a-f]{2}){3}$/),
    ]);
    expect(macs.map((mac: string) => mac.slice(8))).toEqual(
      result.plan.vms.map((vm: { mac: string }) => vm.mac.slice(8)),
    );
    const input = JSON.parse(
      await readFile(join(out, (await readdir(out)).find((file) => file.endsWith('create_vms.json')) ?? ''), 'utf8'),
    );
    expect(input.vms.map((vm: { mac: string }) => vm.mac)).toEqual(
      macs.map((mac: string) => mac.replace(/:/g, '').toUpperCase()),
    );
    await rm(out, { recursive: true });
    const list = JSON.parse((await labctl(['list', '--json', '--lab-dir', dir])).stdout);
    expect(list.vms).toEqual([]);
  });

  it('refuses bad input with exit 2 and a hint, before contacting anything', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'labctl-create-'));
    const noGolden = await labctl(['create', '--count', '2', '--lab-dir', dir]);
    expect(noGolden.code).toBe(2);
    expect(noGolden.stderr).toMatch(/no golden image for group vm\n\s+hint: Pass --golden PATH/);
    expect(
      (await labctl(['create', '--count', '2', '--golden', 'g.vhd', '--name', 'web', '--lab-dir', dir])).code,
    ).toBe(2);
    const destroy = await labctl(['destroy', '--lab-dir', dir, '--json']);
    expect(destroy.code).toBe(2);
    expect(JSON.parse(destroy.stdout).error.code).toBe('LAB_NOT_FOUND');
    const emitLibvirt = await labctl([
      'create',
      '--dry-run',
      '--emit-powershell',
      join(dir, 'out'),
      '--golden',
      'g.vhd',
      '--lab-dir',
      dir,
    ]);
    expect(emitLibvirt.code).toBe(2);
    expect(emitLibvirt.stderr).toMatch(
      /--emit-powershell is for the hyperv provider[^\n]*\n\s+hint: Add --provider hyperv/,
    );
    const emitLive = await labctl([
      'create',
      '--emit-powershell',
      join(dir, 'out'),
      '--provider',
      'hyperv',
      '--lab-dir',
      dir,
    ]);
    expect(emitLive.code).toBe(2);
    expect(emitLive.stderr).toMatch(/--dry-run/);
    expect(await readdir(dir)).toEqual([]);
  });

  it('LIBVIRT_DEFAULT_URI is the libvirt connection, never a Hyper-V host', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'labctl-create-'));
    await writeFile(join(dir, 'labctl.yaml'), 'lab: env\ndefaults: { golden: g.vhd }\n');
    const env = { LIBVIRT_DEFAULT_URI: 'qemu+ssh://root@kvm01/system' };
    const libvirt = JSON.parse(
      (await labctl(['create', '--dry-run', '--offline', '--json', '--count', '1', '--lab-dir', dir], env)).stdout,
    );
    expect(libvirt.plan.vms[0].host).toBe('qemu+ssh://root@kvm01/system');
    const hyperv = JSON.parse(
      (
        await labctl(
          ['create', '--dry-run', '--offline', '--json', '--count', '1', '--provider', 'hyperv', '--lab-dir', dir],
          env,
        )
      ).stdout,
    );
    expect(hyperv.plan.vms[0].host).toBe('local');
    const named = JSON.parse(
      (
        await labctl(
          [
            'create',
            '--dry-run',
            '--offline',
            '--json',
            '--count',
            '1',
            '--provider',
            'hyperv',
            '--host',
            'hv01',
            '--lab-dir',
            dir,
          ],
          env,
        )
      ).stdout,
    );
    expect(named.plan.vms[0].host).toBe('hv01');
  });

  it('--dry-run runs the real checks: a hypervisor it cannot reach refuses the plan (exit 2), nothing is written; --group with a typo names the known groups', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'labctl-create-'));
    await writeFile(join(dir, 'labctl.yaml'), 'lab: dry\ndefaults: { golden: g.vhd }\ngroups: { web: { count: 2 } }\n');
    const unreachable = await labctl(['create', '--dry-run', '--json', '--lab-dir', dir], {
      LIBVIRT_DEFAULT_URI: 'qemu:///system?socket=/nonexistent/labctl/libvirt-sock',
    });
    expect(unreachable.code).toBe(2);
    expect(JSON.parse(unreachable.stdout).error).toMatchObject({
      code: 'PREFLIGHT_FAILED',
      message: expect.stringMatching(/real run would be refused: cannot connect to libvirt/),
    });
    const typo = await labctl([
      'create',
      '--dry-run',
      '--offline',
      '--group',
      'wbe',
      '--count',
      '1',
      '--json',
      '--lab-dir',
      dir,
    ]);
    expect(typo.code).toBe(2);
    expect(JSON.parse(typo.stdout).error).toMatchObject({
      code: 'GROUP_UNKNOWN',
      hint: expect.stringMatching(/Known groups: web\. To start a new group, add --new-group/),
    });
    const fresh = await labctl([
      'create',
      '--dry-run',
      '--offline',
      '--group',
      'cache',
      '--new-group',
      '--count',
      '1',
      '--json',
      '--lab-dir',
      dir,
    ]);
    expect(JSON.parse(fresh.stdout).plan.vms.map((vm: { name: string }) => vm.name)).toEqual(['cache-01']);
    expect(await readdir(dir)).toEqual(['labctl.yaml']);
  });

  it('ip on an empty lab reports no VMs', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'labctl-create-'));
    await writeFile(join(dir, 'labctl.yaml'), 'provider: libvirt\n');
    const run = await labctl(['ip', '--json', '--lab-dir', dir]);
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout).vms).toEqual([]);
  });

  it('help teaches with examples', async () => {
    for (const command of ['create', 'destroy', 'ip']) {
      const { stdout } = await labctl([command, '--help']);
      expect(stdout).toMatch(/EXAMPLES/);
      expect(stdout).toMatch(new RegExp(`\\$ labctl ${command}`));
    }
  });
});

describe('progress', () => {
  function stream() {
    const lines: string[] = [];
    return {
      lines,
      stream: { isTTY: false, write: (text: string) => lines.push(text) } as unknown as NodeJS.WriteStream,
    };
  }

  it('lines a person reads, and a table of the time each phase took for several VMs', async () => {
    const plain = stream();
    const progress = createProgress({
      json: false,
      subjects: ['web-01', 'web-02'],
      finishedBy: () => false,
      stream: plain.stream,
    });
    const at = (s: number) => Date.UTC(2026, 0, 1) + s * 1000;
    progress.sink({ subject: 'web-01', phase: 'disk', status: 'start', message: 'overlay', at: at(0) });
    progress.sink({ subject: 'web-02', phase: 'disk', status: 'start', message: 'overlay', at: at(0) });
    progress.sink({ subject: 'web-01', phase: 'disk', status: 'done', message: 'overlay on golden.vhd', at: at(1) });
    progress.sink({ subject: 'web-02', phase: 'disk', status: 'done', message: 'overlay on golden.vhd', at: at(3) });
    progress.sink({ subject: 'web-01', phase: 'start', status: 'start', at: at(3) });
    progress.sink({ subject: 'web-01', phase: 'start', status: 'done', at: at(4) });
    progress.sink({ subject: 'web-02', phase: 'start', status: 'start', at: at(3) });
    progress.sink({ subject: 'web-02', phase: 'start', status: 'failed', message: 'no memory\u001b[2J', at: at(5) });
    // Reported only when it ends: it began at the VM's previous event.
    progress.sink({ subject: 'web-01', phase: 'address', status: 'done', message: '10.0.0.5', at: at(6) });
    await progress.stop();
    expect(plain.lines.slice(0, 9)).toEqual([
      'web-01: making the disk (overlay)\n',
      'web-02: making the disk (overlay)\n',
      'web-01: disk ready (overlay on golden.vhd)\n',
      'web-02: disk ready (overlay on golden.vhd)\n',
      'web-01: starting\n',
      'web-01: started\n',
      'web-02: starting\n',
      'web-02: start FAILED: no memory\\x1b[2J\n',
      'web-01: address found (10.0.0.5)\n',
    ]);
    expect(plain.lines.slice(9).join('')).toBe(
      [
        '',
        'phase    done  failed  took   per VM (median)',
        'disk     2     0       3.0 s  1.0 s',
        'start    1     1       2.0 s  1.0 s',
        'address  1     0       2.0 s  2.0 s',
        '',
      ].join('\n'),
    );
  });

  it('not a TTY: one line per event; --json: nothing', async () => {
    const plain = stream();
    const progress = createProgress({
      json: false,
      subjects: ['vm-01'],
      finishedBy: () => false,
      stream: plain.stream,
    });
    progress.sink({ subject: 'vm-01', phase: 'disk', status: 'done', message: '/d/vm-01.qcow2' });
    progress.sink({ subject: 'vm-01', phase: 'ssh', status: 'failed' });
    await progress.stop();
    expect(plain.lines).toEqual(['vm-01: disk ready (/d/vm-01.qcow2)\n', 'vm-01: ssh FAILED\n']);
    const json = stream();
    const quiet = createProgress({ json: true, subjects: ['vm-01'], finishedBy: () => false, stream: json.stream });
    quiet.sink({ subject: 'vm-01', phase: 'disk', status: 'done' });
    await quiet.stop();
    expect(json.lines).toEqual([]);
  });
});
