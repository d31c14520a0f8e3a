import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { requireTestbed } from '@labctl/core/testing/testbed';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InventoryFormat } from './emit.js';
import { writeInventory } from './service.js';
import { ansibleEnv } from './testing/ansible.js';

/**
 * `ansible all -m ping` with the emitted inventory against two real sshd hosts, ssh checking host
 * keys strictly against the emitted known_hosts only. ControlMaster is off: a reused master
 * connection would skip the host-key check and hide a wrong key.
 */
const SSH_HOSTS = fileURLToPath(new URL('../../../scripts/testbed/ssh-hosts.sh', import.meta.url));
const COLLECTIONS = fileURLToPath(new URL('../../../ansible/collections', import.meta.url));
const BASE_PORT = 22200; // inventory's ssh tests own 22201-22202
const run = promisify(execFile);
const gate = requireTestbed('ansible ping through the emitted inventory', {
  root: true,
  commands: ['sshd', 'ansible', 'ssh-keygen', 'unshare'],
});

describe.skipIf(gate.skip)('ansible -m ping with strict host-key checking through the emitted known_hosts', () => {
  let bed: string;
  let ports: number[];
  let hostKeys: string[][];

  beforeAll(async () => {
    bed = await mkdtemp(join(tmpdir(), 'inventory-ssh-'));
    // Output to a file: the sshd it starts in the background would keep a pipe open forever.
    await run('sh', ['-c', '"$0" up "$1" 2 "$2" > "$1/up.log" 2>&1', SSH_HOSTS, bed, String(BASE_PORT)]);
    ports =
      (await readFile(join(bed, 'hosts.env'), 'utf8'))
        .match(/"(.*)"/)?.[1]
        ?.split(' ')
        .map(Number) ?? [];
    hostKeys = await Promise.all(
      [1, 2].map(async (i) =>
        Promise.all(
          ['ed25519', 'rsa'].map(async (type) =>
            (await readFile(join(bed, `h${i}`, `ssh_host_${type}_key.pub`), 'utf8')).trim(),
          ),
        ),
      ),
    );
  });
  afterAll(async () => {
    if (bed) await run('sh', ['-c', '"$0" down "$1" > "$1/down.log" 2>&1', SSH_HOSTS, bed]).catch(() => undefined);
    if (bed) await rm(bed, { recursive: true, force: true });
  });

  async function lab(name: string, keysOf: (index: number) => string[]): Promise<string> {
    const dir = join(bed, name);
    await mkdir(join(dir, '.labctl'), { recursive: true });
    const vms = ports.map((port, index) => ({
      name: `h${index + 1}`,
      group: 'ssh-hosts',
      provider: 'manual',
      state: 'running',
      addresses: ['fe80::1', '127.0.0.1'],
      ssh: { user: 'labctl-np', port, hostKeys: keysOf(index), keyFile: join(bed, 'client', 'id_ed25519') },
    }));
    await writeFile(join(dir, '.labctl', 'state.json'), JSON.stringify({ version: 1, lab: name, vms }));
    return dir;
  }

  async function ping(inventory: string): Promise<{ code: number; output: string }> {
    const env = {
      ...ansibleEnv(bed),
      ANSIBLE_COLLECTIONS_PATH: COLLECTIONS,
      HOME: bed,
      ANSIBLE_SSH_ARGS: '-o ControlMaster=no -o ControlPath=none',
      ANSIBLE_TIMEOUT: '15',
    };
    try {
      const { stdout, stderr } = await run('ansible', ['all', '-i', inventory, '-m', 'ping', '-o'], { env });
      return { code: 0, output: stdout + stderr };
    } catch (err) {
      const e = err as { code: number; stdout: string; stderr: string };
      return { code: e.code, output: e.stdout + e.stderr };
    }
  }

  for (const format of ['ini', 'yaml', 'json'] as InventoryFormat[]) {
    it(`${format}: both hosts answer pong`, async () => {
      const dir = await lab(`good-${format}`, (index) => hostKeys[index] ?? []);
      const written = await writeInventory({ labDir: dir, format, output: join(dir, `hosts.${format}`) });
      expect((await readFile(written.knownHostsFile, 'utf8')).split('\n').filter((l) => /^h\d /.test(l))).toHaveLength(
        4,
      );
      const { code, output } = await ping(written.output);
      expect(output).toMatch(/^h1 \| SUCCESS => .*"ping": "pong"/m);
      expect(output).toMatch(/^h2 \| SUCCESS => .*"ping": "pong"/m);
      expect(code).toBe(0);
    }, 90_000);
  }

  it('the labctl.lab.labctl inventory plugin: both hosts answer pong, keys pinned from the state alone', async () => {
    const dir = await lab('plugin', (index) => hostKeys[index] ?? []);
    const config = join(dir, 'lab.labctl.yml');
    await writeFile(config, 'plugin: labctl.lab.labctl\n');
    const { code, output } = await ping(config);
    expect(output).toMatch(/^h1 \| SUCCESS => .*"ping": "pong"/m);
    expect(output).toMatch(/^h2 \| SUCCESS => .*"ping": "pong"/m);
    expect(code).toBe(0);
    expect(
      (await readFile(join(dir, '.labctl', 'known_hosts'), 'utf8')).split('\n').filter((l) => /^h\d /.test(l)),
    ).toHaveLength(4);
  }, 90_000);

  it('a wrong recorded host key makes Ansible refuse the host (and only that host)', async () => {
    const wrong = (await readFile(join(bed, 'client', 'wrong_ed25519.pub'), 'utf8')).trim();
    const dir = await lab('wrong-key', (index) => (index === 0 ? [wrong] : (hostKeys[index] ?? [])));
    const written = await writeInventory({ labDir: dir, format: 'ini', output: join(dir, 'hosts') });
    const { code, output } = await ping(written.output);
    expect(code).not.toBe(0);
    expect(output).toMatch(/^h1 \| UNREACHABLE!/m);
    expect(output).toMatch(/REMOTE HOST IDENTIFICATION HAS CHANGED[\s\S]*Host key verification failed/);
    expect(output).toMatch(/^h2 \| SUCCESS/m);
  }, 90_000);

  it('a host with no recorded key is refused too (no blind accept)', async () => {
    const dir = await lab('no-key', (index) => (index === 0 ? [] : (hostKeys[index] ?? [])));
    const written = await writeInventory({ labDir: dir, format: 'yaml', output: join(dir, 'hosts.yml') });
    expect(written.warnings.some((w) => w.includes('VM h1 has no recorded SSH host key'))).toBe(true);
    const { output } = await ping(written.output);
    expect(output).toMatch(
      /^h1 \| UNREACHABLE!.*No ED25519 host key is known for h1 and you have requested strict checking/m,
    );
    expect(output).toMatch(/^h2 \| SUCCESS/m);
  }, 90_000);
});
