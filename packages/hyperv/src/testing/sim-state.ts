import {
  chmodSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  rmSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { requireTestbed, type Gate } from '@labctl/core/testing/testbed';
import type { FakeFile, FakeHost, Scenario } from './recorded-hosts.js';

/**
 * The simulated Hyper-V host's state directory as tests see it (packages/hyperv/simulator): host.json
 * holds VMs, switches and host settings; the host's volumes are real directories (drives/D/… for
 * D:\…) where a virtual disk is a file whose first line is `LABCTL-SIM-VHD {json}` and a VM
 * configuration a file whose first line is `LABCTL-SIM-VMCX {json}`. A test writes a FakeHost in
 * and reads one back, with `files` read off the volumes, so what the scripts did to real files shows.
 */
const VHD_TAG = 'LABCTL-SIM-VHD ';
const VMCX_TAG = 'LABCTL-SIM-VMCX ';
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');

/** The pwsh the simulated hosts run (the same choice as simulator/host.mjs). */
export function pwshPath(): string | undefined {
  if (process.env.LABCTL_PWSH) return process.env.LABCTL_PWSH;
  const installed = join(repoRoot, '.tools/pwsh/pwsh');
  if (existsSync(installed)) return installed;
  return undefined;
}

/** Tests that run scripts under PowerShell: skipped with the reason without pwsh, a failure in CI. */
export function requirePwsh(what: string, needs: { root?: boolean; commands?: string[] } = {}): Gate {
  const gate = requireTestbed(what, needs);
  if (gate.skip || pwshPath()) return gate;
  const reason = `${what} needs PowerShell 7 (pwsh): ./scripts/setup.sh installs it from NuGet into .tools/pwsh when dotnet is present, or set LABCTL_PWSH`;
  if (/^(1|true)$/i.test(process.env.CI ?? '')) throw new Error(`CI must run ${what}, but: ${reason}`);
  process.stderr.write(`skipping: ${reason}\n`);
  return { skip: true, reason };
}

/** D:\a\b as a file in the state directory. */
export function localPath(stateDir: string, windowsPath: string): string {
  const match = /^([A-Za-z]):[\\/](.*)$/.exec(windowsPath);
  if (!match) throw new Error(`not a drive path: ${windowsPath}`);
  return join(stateDir, 'drives', (match[1] ?? 'D').toUpperCase(), ...(match[2] ?? '').split(/[\\/]/).filter(Boolean));
}

function writeTagged(file: string, tag: string, value: unknown): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o777 });
  writeFileSync(file, `${tag}${JSON.stringify(value)}\n`, { mode: 0o666 });
}

export function writeSimulatedHost(stateDir: string, host: FakeHost, scenario: Scenario): void {
  rmSync(join(stateDir, 'drives'), { recursive: true, force: true, maxRetries: 10 });
  const { files, ...rest } = host;
  for (const [path, file] of Object.entries(files)) {
    const { paddingBytes, ...header } = file;
    const local = localPath(stateDir, path);
    writeTagged(local, VHD_TAG, header);
    // Real bytes behind the header, for copies that must take real writes (a volume filling up).
    if (paddingBytes) truncateSync(local, paddingBytes);
  }
  for (const [path, config] of Object.entries(host.unregistered)) {
    const id = /([^\\]+)\.(vmcx|xml)$/i.exec(path)?.[1];
    if (/^[A-Za-z]:\\/.test(path))
      writeTagged(localPath(stateDir, path), VMCX_TAG, { ...config, ...(id ? { id } : {}) });
  }
  writeFileSync(join(stateDir, 'host.json'), JSON.stringify(rest, null, 1));
  writeFileSync(join(stateDir, 'scenario.json'), JSON.stringify(scenario));
  writeFileSync(join(stateDir, 'invocations.log'), '');
  for (const name of ['host.json', 'scenario.json', 'invocations.log']) chmodSync(join(stateDir, name), 0o666);
  // The sshd testbed's scripts run as an unprivileged user: the volumes must be writable for it
  // (mkdir's mode is filtered by the umask, hence the chmod).
  mkdirSync(join(stateDir, 'drives'), { recursive: true });
  for (const dir of [join(stateDir, 'drives'), ...walk(join(stateDir, 'drives'), true)]) chmodSync(dir, 0o777);
  for (const file of walk(join(stateDir, 'drives'))) chmodSync(file, 0o666);
}

function* walk(dir: string, dirsOnly = false): Generator<string> {
  if (!existsSync(dir)) return;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (dirsOnly) yield full;
      yield* walk(full, dirsOnly);
    } else if (!dirsOnly) yield full;
  }
}

function firstLine(file: string): string {
  const buffer = Buffer.alloc(4096);
  const fd = openSync(file, 'r');
  try {
    const read = readSync(fd, buffer);
    return buffer.subarray(0, read).toString('utf8').split('\n')[0] ?? '';
  } finally {
    closeSync(fd);
  }
}

export function readSimulatedHost(stateDir: string): FakeHost {
  const host = JSON.parse(readFileSync(join(stateDir, 'host.json'), 'utf8')) as FakeHost;
  host.files = {};
  host.vms ??= [];
  host.switches ??= [];
  host.unregistered ??= {};
  const drives = join(stateDir, 'drives');
  for (const file of walk(drives)) {
    const line = firstLine(file);
    if (!line.startsWith(VHD_TAG)) continue;
    const [letter, ...rest] = file.slice(drives.length + 1).split('/');
    host.files[`${letter}:\\${rest.join('\\')}`] = JSON.parse(line.slice(VHD_TAG.length)) as FakeFile;
  }
  return host;
}

/** Every file under the simulated volumes, as Windows paths (what a script left behind). */
export function simulatedFiles(stateDir: string): string[] {
  const drives = join(stateDir, 'drives');
  return [...walk(drives)].map((file) => {
    const [letter, ...rest] = file.slice(drives.length + 1).split('/');
    return `${letter}:\\${rest.join('\\')}`;
  });
}
