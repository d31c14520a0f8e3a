import { libvirtOptions } from './options.js';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { basename } from 'node:path';
import type { Check } from '@labctl/core/checks';
import { describeError, type LabctlError } from '@labctl/core/errors';
import type { Plan, PreflightOptions } from '@labctl/core/provider';
import type { AcceleratorChoice } from './accelerator.js';
import { connectHint, isLocalUri, remoteUriChecks } from './connect.js';
import type { GoldenInfo } from './disks.js';
import type { DiskStore } from './storage.js';
import type { Virsh } from './virsh.js';
import { type LabctlMetadata, networkSource } from './xml.js';

/** What the checks need of the provider: its connection, store, and cached look-ups. */
export interface PreflightHost {
  lab: string;
  uri: string;
  diskDir: string;
  virsh: Virsh;
  store: DiskStore;
  golden(path: string): Promise<GoldenInfo>;
  accelerator(kernel?: string): Promise<AcceleratorChoice>;
  metadata(name: string): Promise<LabctlMetadata | undefined>;
}

/** Every check before anything changes; with `dryRun` only read-only ones (no directory, no probe VM). */
export async function libvirtChecks(host: PreflightHost, plan: Plan, options: PreflightOptions): Promise<Check[]> {
  const checks: Check[] = [];
  try {
    await host.virsh.run(['uri'], { timeoutMs: 30_000 });
    checks.push({ id: 'libvirt.connect', level: 'ok', message: `connected to ${host.uri}` });
  } catch (err) {
    checks.push({
      id: 'libvirt.connect',
      level: 'error',
      message: `cannot connect to libvirt at ${host.uri}: ${describeError(err)}`,
      hint: connectHint(host.uri, err),
    });
    return checks;
  }
  checks.push(...remoteUriChecks(host.uri));
  if (!options.dryRun) await mkdir(host.diskDir, { recursive: true, mode: 0o700 });
  checks.push(...(await host.store.preflight(options)));

  for (const golden of new Set(plan.vms.map((vm) => vm.golden))) {
    try {
      const info = await host.golden(golden);
      checks.push({
        id: 'golden.readable',
        level: 'ok',
        subject: golden,
        message: `golden image ${golden} (${info.format}, ${info.virtualSize} bytes)`,
      });
      if (info.writable) {
        checks.push({
          id: 'golden.readonly',
          level: 'warning',
          subject: golden,
          message: `golden image ${golden} is writable on disk; VMs only ever read it (qcow2 overlays), but other tools could change it under them`,
          hint: `chmod a-w ${golden}`,
        });
      }
    } catch (err) {
      checks.push({
        id: 'golden.readable',
        level: 'error',
        subject: golden,
        message: describeError(err),
        hint: (err as LabctlError).hint,
      });
    }
  }
  const vmOptions = plan.vms.map((vm) => libvirtOptions(vm));
  for (const file of new Set(
    vmOptions.flatMap((vm) => [vm.kernel, vm.initrd].filter((f): f is string => Boolean(f))),
  )) {
    const check = await host.store.checkBootFile(file);
    if (check) checks.push(check);
  }
  for (const network of new Set(plan.vms.map((vm) => vm.network))) checks.push(await checkNetwork(host, network));
  if (vmOptions.some((vm) => vm.firmware === 'uefi')) checks.push(await checkUefi(host));
  checks.push(...(await checkNames(host, plan)));

  // The accelerator probe boots a VM: only worth it when nothing else has refused the plan, and
  // never in a dry run (which changes nothing).
  if (checks.some((check) => check.level === 'error') || options.dryRun) return checks;
  const choice = await host.accelerator(vmOptions.find((vm) => vm.kernel)?.kernel);
  checks.push({
    id: 'libvirt.accelerator',
    level: 'ok',
    message:
      choice.accelerator === 'kvm'
        ? `accelerator: KVM (${choice.reason})`
        : `accelerator: TCG, software emulation (${choice.reason})`,
  });
  return checks;
}

async function checkNetwork(host: PreflightHost, network: string): Promise<Check> {
  const source = networkSource(network);
  if (source.type === 'bridge') {
    if (!isLocalUri(host.uri) || existsSync(`/sys/class/net/${basename(source.name)}`)) {
      return { id: 'network.exists', level: 'ok', subject: network, message: `bridge ${source.name}` };
    }
    return {
      id: 'network.exists',
      level: 'error',
      subject: network,
      message: `bridge ${source.name} does not exist on this host`,
      hint: 'ip link show type bridge',
    };
  }
  try {
    const info = await host.virsh.text(['net-info', source.name]);
    if (!/^Active:\s+yes/m.test(info)) {
      return {
        id: 'network.exists',
        level: 'error',
        subject: network,
        message: `libvirt network ${source.name} is not active`,
        hint: `virsh -c ${host.uri} net-start ${source.name}`,
      };
    }
    return { id: 'network.exists', level: 'ok', subject: network, message: `libvirt network ${source.name} is active` };
  } catch {
    let known = '';
    try {
      known = (await host.virsh.text(['net-list', '--all', '--name'])).split('\n').filter(Boolean).join(', ');
    } catch {}
    return {
      id: 'network.exists',
      level: 'error',
      subject: network,
      message: `libvirt network "${source.name}" does not exist at ${host.uri}`,
      hint: `Networks there: ${known || 'none'}. Use --network NAME, or bridge:NAME for a host bridge.`,
    };
  }
}

async function checkUefi(host: PreflightHost): Promise<Check> {
  try {
    const caps = await host.virsh.text(['domcapabilities', '--machine', 'q35', '--arch', 'x86_64']);
    if (/<value>efi<\/value>/.test(caps) || /OVMF|edk2/i.test(caps))
      return { id: 'firmware.uefi', level: 'ok', message: 'UEFI firmware (OVMF) available' };
  } catch {}
  return {
    id: 'firmware.uefi',
    level: 'error',
    message: 'firmware: uefi asked for, but libvirt has no UEFI firmware',
    hint: 'Install ovmf (Debian) or use firmware: bios.',
  };
}

async function checkNames(host: PreflightHost, plan: Plan): Promise<Check[]> {
  const existing = new Set(await host.virsh.domainNames());
  const checks: Check[] = [];
  for (const vm of plan.vms) {
    if (!existing.has(vm.name)) continue;
    const meta = await host.metadata(vm.name);
    if (meta?.lab === plan.lab) continue;
    checks.push({
      id: 'name.collision',
      level: 'error',
      subject: vm.name,
      message: meta
        ? `a domain named ${vm.name} already exists and belongs to labctl lab "${meta.lab}"`
        : `a domain named ${vm.name} already exists and was not made by labctl`,
      hint: 'labctl never touches domains it did not make. Choose other names (--name PATTERN, --group) or remove that domain yourself.',
    });
  }
  return checks;
}
