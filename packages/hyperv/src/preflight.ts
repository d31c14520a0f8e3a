import type { Check } from '@labctl/core/checks';
import type { VmPlan } from '@labctl/core/provider';
import { GiB, generationOf, isVhd, MiB, secureBootOf } from './inputs.js';
import type { PlacementResult } from './placement.js';
import type { HostFacts } from './types.js';

/**
 * Preflight decisions, from the facts one `get_host_facts` run gathered per host. Pure, so every
 * refusal is tested without a host. Errors stop the run before anything is changed.
 */

/**
 * Free space kept beyond the worst case: Hyper-V warns under 2 GB free and pauses VMs
 * ("Paused-Critical") under 200 MB.
 */
export const FREE_SPACE_MARGIN = 2 * GiB;
/** Metadata of a new dynamic/differencing VHDX (headers, BAT, log) on top of its data. */
const DISK_OVERHEAD = 64 * MiB;

export const LINUX_SECURE_BOOT_TEMPLATE = 'MicrosoftUEFICertificateAuthority';

function gib(bytes: number): string {
  return `${(bytes / GiB).toFixed(1)} GiB`;
}

export interface HostFactsOutcome {
  host: string;
  facts?: HostFacts;
  /** Why facts could not be read (unreachable, authentication, PowerShell missing). */
  error?: string;
}

export function evaluatePreflight(
  lab: string,
  vms: readonly VmPlan[],
  outcomes: readonly HostFactsOutcome[],
  placement: PlacementResult,
  diskDirOf: (host: string) => string | undefined,
): Check[] {
  const checks: Check[] = [];
  const byHost = new Map(outcomes.map((outcome) => [outcome.host, outcome]));
  for (const outcome of outcomes) {
    if (outcome.error) {
      checks.push({
        id: 'hyperv.host.reachable',
        level: 'error',
        subject: outcome.host,
        message: `cannot run PowerShell on ${outcome.host}: ${outcome.error}`,
        hint: 'Check that OpenSSH Server runs on the host, the user may log in, and the host key is known (labctl pins it).',
      });
    } else if (outcome.facts && !outcome.facts.hyperVModule) {
      checks.push({
        id: 'hyperv.host.module',
        level: 'error',
        subject: outcome.host,
        message: `${outcome.host} has no Hyper-V PowerShell module (PowerShell ${outcome.facts.psVersion})`,
        hint: 'Install-WindowsFeature Hyper-V-PowerShell (Server) or Enable-WindowsOptionalFeature -Online -FeatureName Microsoft-Hyper-V-Management-PowerShell.',
      });
    } else if (outcome.facts) {
      checks.push({
        id: 'hyperv.host.reachable',
        level: 'ok',
        subject: outcome.host,
        message: `${outcome.host}: Hyper-V module present`,
      });
    }
  }

  const newOnHost = new Map<string, VmPlan[]>();
  for (const vm of vms) {
    const host = placement.hostOf.get(vm.name);
    if (!host) continue;
    const facts = byHost.get(host)?.facts;
    const existing = facts?.names?.find((entry) => entry.name === vm.name);
    if (existing?.exists) {
      if (existing.lab !== lab) {
        checks.push({
          id: 'hyperv.name.collision',
          level: 'error',
          subject: vm.name,
          message: `a VM named "${vm.name}" already exists on ${host} and was not made by lab "${lab}"`,
          hint: 'Pick another name pattern (groups.<g>.name) or remove that VM yourself; labctl never touches VMs it did not make.',
        });
      }
      continue;
    }
    newOnHost.set(host, [...(newOnHost.get(host) ?? []), vm]);
  }

  for (const [host, newVms] of newOnHost) {
    const facts = byHost.get(host)?.facts;
    if (!facts?.hyperVModule) continue;
    const goldens = new Map((facts.goldens ?? []).map((golden) => [golden.path, golden]));
    for (const path of new Set(newVms.map((vm) => vm.golden))) {
      const golden = goldens.get(path);
      if (golden?.error) {
        checks.push({
          id: 'hyperv.golden.unreadable',
          level: 'error',
          subject: path,
          message: `cannot read golden disk ${path} on ${host}: ${golden.error.message}`,
          hint: 'Check the file with Get-VHD on the host; the other golden disks were checked.',
        });
        continue;
      }
      if (golden && !golden.exists && golden.readable === false && golden.reason !== 'missing') {
        checks.push({
          id: 'hyperv.golden.unreadable',
          level: 'error',
          subject: path,
          message: `golden disk ${path} is not readable from this session on ${host} (${golden.reason ?? 'share not readable'})`,
          hint: 'An SSH session that logged on with a key has no network credentials, so a share is out of reach. Copy the golden disk to a local volume of the host (or a Cluster Shared Volume), or give the computer account read access to the share (docs/hyperv.md, "Golden disks on a share").',
        });
        continue;
      }
      if (!golden?.exists) {
        checks.push({
          id: 'hyperv.golden.missing',
          level: 'error',
          subject: path,
          message: `golden disk ${path} does not exist on ${host}`,
          hint: 'Set `golden:` in labctl.yaml to the path as the Hyper-V host sees it (e.g. D:\\Golden\\centos7.vhdx).',
        });
        continue;
      }
      if (golden.vhdType === 'Differencing' || golden.vhdType === '4') {
        checks.push({
          id: 'hyperv.golden.differencing',
          level: 'error',
          subject: path,
          message: `golden disk ${path} is itself a differencing disk (parent ${golden.parentPath || 'unknown'})`,
          hint: 'Flatten it into a standalone disk first (labctl vhd flatten, or Convert-VHD), so new VMs do not depend on a chain.',
        });
      }
      const running = (golden.attachedTo ?? []).filter((entry) => entry.state !== 'Off');
      if (running.length > 0) {
        checks.push({
          id: 'hyperv.golden.in-use',
          level: 'error',
          subject: path,
          message: `golden disk ${path} is attached to running VM ${running.map((entry) => `"${entry.vm}"`).join(', ')}`,
          hint: 'Stop that VM and detach the disk: a golden disk must not change while children depend on it.',
        });
      } else if ((golden.attachedTo ?? []).length > 0) {
        checks.push({
          id: 'hyperv.golden.attached',
          level: 'warning',
          subject: path,
          message: `golden disk ${path} is attached to VM ${(golden.attachedTo ?? []).map((entry) => `"${entry.vm}"`).join(', ')} (off)`,
          hint: 'Starting that VM would change the golden disk and break every differencing child; detach it.',
        });
      }
      if ((golden.writableBy ?? []).length > 0) {
        checks.push({
          id: 'hyperv.golden.writable',
          level: 'warning',
          subject: path,
          message: `golden disk ${path} is writable by ${(golden.writableBy ?? []).join(', ')}`,
          hint: 'Make it read-only for everyone but administrators (icacls); a write to it breaks every child.',
        });
      }
    }

    for (const name of new Set(newVms.map((vm) => vm.network))) {
      const entry = facts.switches?.find((item) => item.name === name);
      if (!entry?.exists) {
        checks.push({
          id: 'hyperv.switch.missing',
          level: 'error',
          subject: name,
          message: `virtual switch "${name}" does not exist on ${host}`,
          hint: 'Create it (New-VMSwitch -Name <name> -SwitchType Internal) or set `network:` to one listed by Get-VMSwitch.',
        });
      }
    }

    const diskDir = diskDirOf(host);
    const volume = facts.volumes?.find((item) => item.dir === diskDir) ?? facts.volumes?.[0];
    if (volume && volume.freeBytes === null) {
      checks.push({
        id: 'hyperv.disk.space',
        level: 'warning',
        subject: `${host}:${volume.dir}`,
        message: `free space for ${volume.dir} on ${host} is unknown: ${volume.unknown ?? 'not reported'}`,
        hint: 'Make sure the volume can hold the new disks: Hyper-V pauses VMs ("Paused-Critical") when it fills.',
      });
    } else if (volume) {
      let worstCase = 0;
      for (const vm of newVms) {
        const golden = goldens.get(vm.golden);
        // A differencing child and a dynamic copy can both grow to the golden disk's virtual size.
        worstCase += (golden?.sizeBytes ?? 0) + DISK_OVERHEAD;
      }
      const needed = worstCase + FREE_SPACE_MARGIN;
      const free = volume.freeBytes ?? 0;
      const root = volume.root ?? volume.dir;
      if (free < needed) {
        checks.push({
          id: 'hyperv.disk.space',
          level: 'error',
          subject: `${host}:${root}`,
          message: `${root} on ${host} has ${gib(free)} free; ${newVms.length} new disks can grow to ${gib(worstCase)}, plus a ${gib(FREE_SPACE_MARGIN)} margin`,
          hint: 'Hyper-V pauses VMs ("Paused-Critical") when the volume fills. Free space, create fewer VMs, or put disks elsewhere (hosts[].path).',
        });
      } else {
        checks.push({
          id: 'hyperv.disk.space',
          level: 'ok',
          subject: `${host}:${root}`,
          message: `${root} on ${host}: ${gib(free)} free, worst case ${gib(worstCase)}`,
        });
      }
    }

    const tooManyCpus = facts.logicalProcessors ? newVms.filter((vm) => vm.cpus > (facts.logicalProcessors ?? 0)) : [];
    if (tooManyCpus.length > 0) {
      checks.push({
        id: 'hyperv.cpus.host',
        level: 'error',
        subject: tooManyCpus.map((vm) => vm.name).join(', '),
        message: `${tooManyCpus.length} VM(s) ask for ${Math.max(...tooManyCpus.map((vm) => vm.cpus))} virtual processors; ${host} has ${facts.logicalProcessors} logical processors`,
        hint: 'Hyper-V refuses more virtual processors than the host has logical processors: lower `cpus`.',
      });
    }
    checks.push(...macCollisions(lab, host, newVms, facts));

    const generation2 = newVms.filter((vm) => generationOf(vm) === 2);
    const vhdOnGeneration2 = generation2.filter((vm) => isVhd(vm.golden));
    if (vhdOnGeneration2.length > 0) {
      checks.push({
        id: 'hyperv.generation.vhd',
        level: 'error',
        subject: vhdOnGeneration2.map((vm) => vm.name).join(', '),
        message: `Generation 2 VMs cannot boot from a .vhd disk (${vhdOnGeneration2[0]?.golden})`,
        hint: 'Use `generation: 1` for this golden disk, or convert it to VHDX (Convert-VHD).',
      });
    }
    if (generation2.some((vm) => secureBootOf(vm) === 'linux')) {
      const templates = facts.secureBootTemplates ?? [];
      if (
        facts.secureBootTemplateParameter === false ||
        (templates.length > 0 && !templates.includes(LINUX_SECURE_BOOT_TEMPLATE))
      ) {
        checks.push({
          id: 'hyperv.secureboot.template',
          level: 'error',
          subject: host,
          message: `${host} cannot set the ${LINUX_SECURE_BOOT_TEMPLATE} Secure Boot template that Linux guests need`,
          hint: 'Set `secureBoot: off` for these VMs, or update the host; with the Windows template a Linux guest stops at UEFI.',
        });
      }
    }
    const windowsTemplate = generation2.filter((vm) => secureBootOf(vm) === 'windows');
    if (windowsTemplate.length > 0) {
      checks.push({
        id: 'hyperv.secureboot.windows',
        level: 'warning',
        subject: windowsTemplate.map((vm) => vm.name).join(', '),
        message: `${windowsTemplate.length} Generation 2 VM(s) get the MicrosoftWindows Secure Boot template: a Linux guest will not boot with it`,
        hint: 'For Linux golden disks use `secureBoot: linux` (MicrosoftUEFICertificateAuthority, the default) or `secureBoot: off`.',
      });
    }
  }

  const oddMemory = vms.filter((vm) => vm.memoryMiB % 2 !== 0);
  if (oddMemory.length > 0) {
    checks.push({
      id: 'hyperv.memory.alignment',
      level: 'error',
      subject: oddMemory.map((vm) => vm.name).join(', '),
      message: `startup memory must be a multiple of 2 MB on Hyper-V; ${oddMemory[0]?.memoryMiB} MiB is not`,
      hint: `Use an even number of MiB, e.g. memory: ${(oddMemory[0]?.memoryMiB ?? 1) + 1}M.`,
    });
  }
  const byMac = new Map<string, string[]>();
  for (const vm of vms) if (vm.mac) byMac.set(hexMac(vm.mac), [...(byMac.get(hexMac(vm.mac)) ?? []), vm.name]);
  for (const [mac, names] of byMac) {
    if (names.length < 2) continue;
    checks.push({
      id: 'hyperv.mac.duplicate',
      level: 'error',
      subject: names.join(', '),
      message: `${names.length} VMs of the lab have the MAC address ${colonHex(mac)}`,
      hint: 'Give each VM its own `mac:`, or leave it out for a dynamic MAC from the host.',
    });
  }

  for (const entry of placement.overcommitted) {
    checks.push({
      id: 'hyperv.host.memory',
      level: 'error',
      subject: entry.host,
      message: `${entry.host} has ${gib(entry.freeBytes)} free memory; its new VMs need ${gib(entry.neededBytes)} (with the host's reserve)`,
      hint: 'Add hosts (hosts: in labctl.yaml), lower memory, or create fewer VMs.',
    });
  }
  return checks;
}

function hexMac(mac: string): string {
  return mac.replace(/[^0-9a-fA-F]/g, '').toUpperCase();
}

function colonHex(hex: string): string {
  return hex.match(/.{2}/g)?.join(':') ?? hex;
}

/**
 * Static MACs of the new VMs that a VM on the host already has (another lab's, or one labctl did
 * not make). Microsoft's OUI 00:15:5D is also where each host hands out dynamic MACs, so static
 * ones there can collide with another host's VMs on the same network: the hint offers a locally
 * administered prefix (second bit of the first octet set), which no host pool uses.
 */
function macCollisions(lab: string, host: string, newVms: readonly VmPlan[], facts: HostFacts): Check[] {
  const taken = new Map(
    (facts.macs ?? []).filter((entry) => entry.lab !== lab).map((entry) => [hexMac(entry.mac), entry.vm]),
  );
  const checks: Check[] = [];
  for (const vm of newVms) {
    if (!vm.mac) continue;
    const owner = taken.get(hexMac(vm.mac));
    if (!owner) continue;
    checks.push({
      id: 'hyperv.mac.duplicate',
      level: 'error',
      subject: vm.name,
      message: `MAC ${colonHex(hexMac(vm.mac))} of ${vm.name} is already used by VM "${owner}" on ${host}`,
      hint: 'Pick another MAC, or a locally administered prefix no Hyper-V pool hands out (e.g. 02:15:5D:xx:xx:xx).',
    });
  }
  return checks;
}
