import { collectingSink } from '@labctl/core/events';
import type { AdapterReport } from '@labctl/core/provider';
import type { VmRecord } from '@labctl/core/state';
import { FakeProvider } from '@labctl/core/testing/fake-provider';
import { describe, expect, it } from 'vitest';
import { discover, evaluateReports } from './discover.js';
import type { ProbeTarget, SshProbe } from './ssh-probe.js';
import { LabctlError } from '@labctl/core/errors';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { utils } from 'ssh2';

const KEY_A = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKeyA';
const KEY_B = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKeyB';

function vm(name: string, mac: string, extra: Partial<VmRecord> = {}): VmRecord {
  return {
    name,
    group: 'g',
    provider: 'fake',
    host: 'hv1',
    mac,
    addresses: [],
    ssh: { port: 22, hostKeys: [] },
    state: 'running',
    ...extra,
  };
}

/** A recording fake SSH probe: answers per address; records every target. */
function fakeProbe(answers: Record<string, 'ok' | 'refused' | 'timeout'>, hostKey = KEY_A) {
  const calls: ProbeTarget[] = [];
  const probe: SshProbe = async (target) => {
    calls.push(target);
    const answer = answers[target.address] ?? 'refused';
    if (answer !== 'ok') return { ok: false, reason: answer, message: answer };
    if (target.pinnedKeys.length > 0 && !target.pinnedKeys.includes(hostKey)) {
      return { ok: false, reason: 'key-mismatch', message: `host key ${hostKey} is not the one recorded`, hostKey };
    }
    return { ok: true, hostKey };
  };
  return { probe, calls };
}

const fast = { intervalMs: 5, maxIntervalMs: 20 };

describe('evaluateReports', () => {
  const a = vm('a', '52:54:00:00:00:0a');
  it('drops unusable addresses and says which and why', () => {
    const r = evaluateReports(
      a,
      [{ vm: 'a', mac: a.mac, addresses: ['169.254.1.2', 'fe80::1'], source: 'lease' }],
      undefined,
    );
    expect(r.seen).toBe('unusable-address');
    expect(r.detail).toMatch(/169\.254\.1\.2 \(APIPA.*fe80::1 \(IPv6 link-local/);
  });

  it('ignores a lease older than the VM start (a destroyed VM with the same MAC), and other MACs', () => {
    const reports: AdapterReport[] = [
      { vm: 'a', mac: a.mac, addresses: ['10.0.0.5'], source: 'lease', obtainedAt: 1_000 },
      { vm: 'a', mac: '52:54:00:ff:ff:ff', addresses: ['10.0.0.9'], source: 'lease' },
    ];
    const r = evaluateReports(a, reports, 60_000);
    expect(r.addresses).toEqual([]);
    expect(r.seen).toBe('stale-lease');
    expect(evaluateReports(a, [{ ...reports[0]!, obtainedAt: 59_000 }], 60_000).addresses).toEqual(['10.0.0.5']);
  });

  it('ranks IPv4 before IPv6 and strips prefixes', () => {
    expect(
      evaluateReports(
        a,
        [{ vm: 'a', mac: a.mac, addresses: ['fd00::5/64', '10.0.0.5/24'], source: 'agent' }],
        undefined,
      ).addresses,
    ).toEqual(['10.0.0.5', 'fd00::5']);
  });

  it('no report or a problem: no adapter / no domain', () => {
    expect(evaluateReports(a, [], undefined).seen).toBe('no-adapter');
    expect(
      evaluateReports(
        a,
        [{ vm: 'a', addresses: [], source: 'libvirt', problem: 'no domain a at qemu:///system' }],
        undefined,
      ).seen,
    ).toBe('no-domain');
  });
});

describe('discover', () => {
  it('polls until the lease appears, confirms SSH and records the host key', async () => {
    const provider = new FakeProvider();
    const a = vm('a', '52:54:00:00:00:0a');
    provider.adapters_Return = [
      [],
      [{ vm: 'a', mac: a.mac, addresses: ['0.0.0.0'], source: 'lease' }],
      [{ vm: 'a', mac: a.mac, addresses: ['10.0.0.5/24'], source: 'lease' }],
    ];
    const { probe, calls } = fakeProbe({ '10.0.0.5': 'ok' });
    const events = collectingSink();
    const [result] = await discover(provider, [a], { timeoutMs: 5_000, probe, events, ...fast });
    expect(result).toMatchObject({
      name: 'a',
      status: 'reachable',
      sshAddress: '10.0.0.5',
      addresses: ['10.0.0.5'],
      hostKeys: [KEY_A],
    });
    expect(provider.adapters_Called).toBe(3);
    expect(calls).toEqual([{ address: '10.0.0.5', port: 22, pinnedKeys: [] }]);
    expect(events.events.map((e) => `${e.phase}:${e.status}`)).toEqual(['address:done', 'ssh:done']);
  });

  it('on timeout says per VM what it saw and what to check, and never waits past the deadline', async () => {
    const provider = new FakeProvider();
    const vms = [
      vm('nolease', '52:54:00:00:00:01'),
      vm('closed', '52:54:00:00:00:02'),
      vm('gone', '52:54:00:00:00:03'),
    ];
    provider.adapters_Return = [
      [
        { vm: 'nolease', mac: '52:54:00:00:00:01', addresses: [], source: 'lease' },
        { vm: 'closed', mac: '52:54:00:00:00:02', addresses: ['10.0.0.2'], source: 'lease' },
        { vm: 'gone', addresses: [], source: 'libvirt', problem: 'no domain gone at qemu:///system' },
      ],
    ];
    const { probe } = fakeProbe({ '10.0.0.2': 'refused' });
    const started = Date.now();
    const results = await discover(provider, vms, { timeoutMs: 300, probe, ...fast });
    expect(Date.now() - started).toBeLessThan(1_500);
    const byName = Object.fromEntries(results.map((r) => [r.name, r]));
    expect(byName.nolease).toMatchObject({ status: 'timeout', seen: 'no-lease' });
    expect(byName.nolease!.hint).toMatch(/No DHCP lease/);
    expect(byName.closed).toMatchObject({ status: 'timeout', seen: 'ssh-closed', addresses: ['10.0.0.2'] });
    expect(byName.closed!.detail).toMatch(/address 10\.0\.0\.2, but SSH refuses connections/);
    expect(byName.closed!.hint).toMatch(/sshd/);
    expect(byName.gone).toMatchObject({ status: 'timeout', seen: 'no-domain' });
  });

  it('a pinned host key that changed is a failure, not a new key', async () => {
    const provider = new FakeProvider();
    const a = vm('a', '52:54:00:00:00:0a', { ssh: { port: 22, hostKeys: [KEY_B] } });
    provider.adapters_Return = [[{ vm: 'a', mac: a.mac, addresses: ['10.0.0.5'], source: 'lease' }]];
    const { probe, calls } = fakeProbe({ '10.0.0.5': 'ok' }, KEY_A);
    const [result] = await discover(provider, [a], { timeoutMs: 2_000, probe, ...fast });
    expect(result).toMatchObject({ status: 'failed', seen: 'ssh-key-mismatch', hostKeys: [KEY_B] });
    expect(calls[0]!.pinnedKeys).toEqual([KEY_B]);
    expect(calls).toHaveLength(1);
  });

  it('at most 10 SSH handshakes at once per hypervisor host', async () => {
    const provider = new FakeProvider();
    const vms = Array.from({ length: 25 }, (_, i) =>
      vm(`v${i}`, `52:54:00:00:01:${i.toString(16).padStart(2, '0')}`, { host: i < 20 ? 'hv1' : 'hv2' }),
    );
    provider.adapters_Return = [
      vms.map((v, i) => ({ vm: v.name, mac: v.mac, addresses: [`10.0.1.${i + 1}`], source: 'lease' })),
    ];
    let inFlight = 0;
    let peak = 0;
    const probe: SshProbe = async () => {
      peak = Math.max(peak, ++inFlight);
      await new Promise((r) => setTimeout(r, 30));
      inFlight--;
      return { ok: true, hostKey: KEY_A };
    };
    const results = await discover(provider, vms, { timeoutMs: 5_000, probe, ...fast });
    expect(results.every((r) => r.status === 'reachable')).toBe(true);
    // hv1 (20 VMs) is capped at 10, hv2 (5 VMs) runs beside it.
    expect(peak).toBe(15);
  });

  it('ssh: false stops at the first usable address (labctl ip without --wait)', async () => {
    const provider = new FakeProvider();
    const a = vm('a', '52:54:00:00:00:0a');
    provider.adapters_Return = [[{ vm: 'a', mac: a.mac, addresses: ['10.0.0.5'], source: 'lease' }]];
    const { probe, calls } = fakeProbe({});
    const [result] = await discover(provider, [a], { timeoutMs: 0, ssh: false, probe, ...fast });
    expect(result).toMatchObject({ status: 'addressed', addresses: ['10.0.0.5'] });
    expect(calls).toEqual([]);
    expect(provider.adapters_Called).toBe(1);
  });

  it('keeps polling through hypervisor errors until the deadline; a VM never answered for ends failed with the error, not "no adapter"', async () => {
    const provider = new FakeProvider();
    provider.adapters_Err = new LabctlError(
      'LIBVIRT_CONNECT',
      'cannot connect to libvirt at qemu:///system: connection reset',
      { hint: 'Is libvirtd running?' },
    );
    const [result] = await discover(provider, [vm('a', '52:54:00:00:00:0a')], {
      timeoutMs: 200,
      probe: fakeProbe({}).probe,
      ...fast,
    });
    expect(result).toMatchObject({
      status: 'failed',
      seen: 'hypervisor-error',
      failure: { code: 'LIBVIRT_CONNECT' },
      hint: 'Is libvirtd running?',
    });
    expect(result!.detail).toMatch(/connection reset/);
    expect(provider.adapters_Called).toBeGreaterThan(2);
  });

  it('a hypervisor error after an answer keeps what was seen (a transient error, not a failure)', async () => {
    const provider = new FakeProvider();
    let poll = 0;
    provider.adapters = async (vms) => {
      provider.adapters_Called++;
      if (poll++ > 0) throw new Error('virsh: connection reset');
      return vms.map((v) => ({ vm: v.name, mac: v.mac, addresses: [], source: 'lease' }));
    };
    const [result] = await discover(provider, [vm('a', '52:54:00:00:00:0a')], {
      timeoutMs: 200,
      probe: fakeProbe({}).probe,
      ...fast,
    });
    expect(result).toMatchObject({ status: 'timeout', seen: 'no-lease' });
  });
});

describe('discover: addresses given before boot, and the login stage', () => {
  it('probes a static address at once (no adapter poll), logs in with the lab key, and says so when the VM refuses it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'labctl-discover-'));
    const keyFile = join(dir, 'id_ed25519');
    writeFileSync(keyFile, utils.generateKeyPairSync('ed25519').private, { mode: 0o600 });
    const provider = new FakeProvider();
    const seen: ProbeTarget[] = [];
    const probe: SshProbe = async (target) => {
      seen.push(target);
      return { ok: true, hostKey: KEY_A, login: target.address === '10.0.0.21' ? 'denied' : 'ok' };
    };
    const results = await discover(
      provider,
      [
        vm('st-01', '52:54:00:00:00:01', {
          assignedAddress: '10.0.0.20',
          assign: 'static',
          ssh: { user: 'ansible', hostKeys: [KEY_A], keyFile },
        }),
        vm('st-02', '52:54:00:00:00:02', {
          assignedAddress: '10.0.0.21',
          assign: 'static',
          instanceId: 'st-02-1',
          ssh: { user: 'ansible', hostKeys: [KEY_A], keyFile },
        }),
      ],
      { timeoutMs: 2_000, probe, ...fast },
    );
    expect(provider.adapters_Called).toBe(0);
    expect(seen.map((t) => [t.address, t.login?.user, t.pinnedKeys])).toEqual([
      ['10.0.0.20', 'ansible', [KEY_A]],
      ['10.0.0.21', 'ansible', [KEY_A]],
    ]);
    expect(results[0]).toMatchObject({
      status: 'reachable',
      addresses: ['10.0.0.20'],
      detail: expect.stringMatching(/ansible logged in with the lab key/),
    });
    expect(results[1]).toMatchObject({
      status: 'failed',
      seen: 'login-denied',
      hint: expect.stringMatching(/authorized_keys/),
    });
  });
});
