import { existsSync, readdirSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { sleep } from '@labctl/core/concurrency';
import { escapeXml } from './xml.js';
import type { ProbeConsole } from './storage.js';
import type { Virsh } from './virsh.js';

/**
 * KVM or TCG. `/dev/kvm` existing proves nothing (kvm-pvm, for one, opens fine and then hangs stock
 * kernels), so KVM is chosen only when a probe VM with a real kernel gets far enough to panic for lack
 * of a root disk. The answer is cached per URI and kernel for a day: the probe costs seconds when it fails.
 */
export type Accelerator = 'kvm' | 'tcg';

export interface AcceleratorChoice {
  accelerator: Accelerator;
  reason: string;
}

const PROOF = /Kernel panic|VFS: Unable to mount root|Run \/init|Freeing unused kernel/;
const CACHE_MS = 24 * 3600_000;

export function newestHostKernel(): string | undefined {
  try {
    const kernels = readdirSync('/boot').filter((name) => name.startsWith('vmlinuz-'));
    kernels.sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
    const newest = kernels.at(-1);
    return newest ? join('/boot', newest) : undefined;
  } catch {
    return undefined;
  }
}

/** `$XDG_CACHE_HOME/labctl/accelerator.json`: one probe per machine and day, not one per lab. */
export function defaultCacheFile(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'labctl', 'accelerator.json');
}

export async function chooseAccelerator(
  virsh: Virsh,
  options: {
    kernel?: string;
    workDir: string;
    cacheFile?: string;
    timeoutMs?: number;
    forced?: Accelerator;
    /**
     * The libvirt host is another machine: the probe kernel is the lab's own (a path on that host;
     * this machine's /boot says nothing about it) and the console comes from `console`.
     */
    remote?: boolean;
    /** Where the probe VM's serial console goes and how it is read back (default: a file in workDir). */
    console?: (name: string) => Promise<ProbeConsole>;
  },
): Promise<AcceleratorChoice> {
  if (options.forced) return { accelerator: options.forced, reason: 'set in the lab file (libvirt.accelerator)' };
  try {
    await virsh.run(['domcapabilities', '--virttype', 'kvm'], { timeoutMs: 20_000 });
  } catch {
    return { accelerator: 'tcg', reason: 'libvirt offers no KVM on this host' };
  }
  const kernel = options.remote ? options.kernel : (options.kernel ?? newestHostKernel());
  if (!kernel) {
    return {
      accelerator: 'tcg',
      reason: options.remote
        ? 'no kernel: in the lab file to probe KVM with on that host; libvirt.accelerator: kvm skips the probe'
        : 'no kernel to probe KVM with',
    };
  }
  if (!options.remote && !existsSync(kernel)) return { accelerator: 'tcg', reason: 'no kernel to probe KVM with' };
  const cacheFile = options.cacheFile ?? defaultCacheFile();
  // One answer per host and kernel: a URI's query (e.g. ?socket= of a private libvirtd) names no other
  // host, and neither does its transport (qemu+ssh:// and qemu+libssh:// reach the same daemon).
  const key = `${virsh.uri.replace(/\?.*$/, '').replace(/^([a-z0-9]+)\+[a-z0-9]+:/i, '$1:')}\0${kernel}`;
  try {
    const cached = JSON.parse(await readFile(cacheFile, 'utf8')) as {
      key: string;
      at: number;
      choice: AcceleratorChoice;
    };
    if (cached.key === key && Date.now() - cached.at < CACHE_MS)
      return { ...cached.choice, reason: `${cached.choice.reason} (cached)` };
  } catch {}
  const choice = await probeKvm(virsh, kernel, options.workDir, options.timeoutMs ?? 8_000, options.console);
  await mkdir(dirname(cacheFile), { recursive: true }).catch(() => {});
  await writeFile(cacheFile, JSON.stringify({ key, at: Date.now(), choice }), { mode: 0o600 }).catch(() => {});
  return choice;
}

function localConsole(workDir: string): (name: string) => Promise<ProbeConsole> {
  return async (name) => {
    const path = join(workDir, `${name}.console`);
    await rm(path, { force: true });
    return { path, read: () => readFile(path, 'utf8').catch(() => ''), remove: () => rm(path, { force: true }) };
  };
}

async function probeKvm(
  virsh: Virsh,
  kernel: string,
  workDir: string,
  timeoutMs: number,
  makeConsole: (name: string) => Promise<ProbeConsole> = localConsole(workDir),
): Promise<AcceleratorChoice> {
  await mkdir(workDir, { recursive: true, mode: 0o700 });
  const name = `labctl-kvm-probe-${process.pid}`;
  const console = await makeConsole(name);
  const consoleLog = console.path;
  const xmlFile = join(workDir, `${name}.xml`);
  await writeFile(
    xmlFile,
    [
      "<domain type='kvm'>",
      `  <name>${escapeXml(name)}</name>`,
      "  <memory unit='MiB'>128</memory><vcpu>1</vcpu>",
      "  <os><type arch='x86_64' machine='pc'>hvm</type>",
      `    <kernel>${escapeXml(kernel)}</kernel><cmdline>console=ttyS0 panic=-1</cmdline></os>`,
      '  <on_reboot>destroy</on_reboot><on_crash>destroy</on_crash>',
      `  <devices><serial type='file'><source path='${escapeXml(consoleLog)}'/><target port='0'/></serial><memballoon model='none'/></devices>`,
      "  <seclabel type='static' model='dac' relabel='no'><label>+0:+0</label></seclabel>",
      '</domain>',
    ].join('\n'),
    { mode: 0o600 },
  );
  const started = Date.now();
  try {
    try {
      await virsh.run(['create', xmlFile], { timeoutMs: 30_000 });
    } catch (err) {
      return { accelerator: 'tcg', reason: `a KVM probe VM did not start (${(err as Error).message})` };
    }
    while (Date.now() - started < timeoutMs) {
      const output = await console.read();
      if (PROOF.test(output))
        return {
          accelerator: 'kvm',
          reason: `a KVM probe VM booted a kernel in ${((Date.now() - started) / 1000).toFixed(1)} s`,
        };
      await sleep(250);
    }
    return {
      accelerator: 'tcg',
      reason: `a KVM probe VM did not boot a kernel within ${timeoutMs / 1000} s (e.g. kvm-pvm, nested virtualisation off)`,
    };
  } finally {
    await virsh.run(['destroy', name], { timeoutMs: 20_000 }).catch(() => {});
    await rm(xmlFile, { force: true });
    await console.remove().catch(() => {});
  }
}
