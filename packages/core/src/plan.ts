import { createHash } from 'node:crypto';
import { UsageError } from './errors.js';

/**
 * Naming and identity of planned VMs. Names come from a pattern; MACs are derived from the lab and
 * VM name, so re-creating a VM gives it the same MAC (and, with DHCP, usually the same address).
 */
export const DEFAULT_NAME_PATTERN = '{group}-{nn}';

/** The prefix libvirt/QEMU give their NICs (the default for planned MACs). */
/** A locally administered prefix (second bit of the first octet set): no vendor owns it, no hypervisor pool hands it out. */
export const LOCAL_MAC_PREFIX = '02:1a:b0';

const PATTERN_TOKEN = /\{(group|n+)\}/g;

export function validateNamePattern(pattern: string): void {
  if (!/\{n+\}/.test(pattern)) {
    throw new UsageError('NAME_PATTERN', `name pattern "${pattern}" has no number placeholder`, {
      hint: 'Use {n}, {nn} or {nnn}, e.g. "web-{nn}" gives web-01, web-02, ...',
    });
  }
  const leftover = pattern.replace(PATTERN_TOKEN, '');
  if (/[{}]/.test(leftover)) {
    throw new UsageError('NAME_PATTERN', `name pattern "${pattern}" has an unknown placeholder`, {
      hint: 'Placeholders: {group}, {n}, {nn}, {nnn}.',
    });
  }
  if (!/^[A-Za-z0-9_.-]*$/.test(leftover)) {
    throw new UsageError(
      'NAME_PATTERN',
      `name pattern "${pattern}" would make names with characters other than letters, digits, "_", "-", "."`,
    );
  }
}

export function vmName(pattern: string, group: string, index: number): string {
  return pattern.replace(PATTERN_TOKEN, (_, token: string) =>
    token === 'group' ? group : String(index).padStart(token.length, '0'),
  );
}

/**
 * The first `count` names of a group: index 1..count. Names already taken by other groups are
 * refused, so two groups never fight over one VM.
 */
export function planNames(pattern: string, group: string, count: number): string[] {
  validateNamePattern(pattern);
  return Array.from({ length: count }, (_, i) => vmName(pattern, group, i + 1));
}

/** Deterministic unicast MAC under `prefix` (3 octets) from lab + VM name. */
export function deterministicMac(lab: string, name: string, prefix = LOCAL_MAC_PREFIX): string {
  const digest = createHash('sha256').update(`${lab}\0${name}`).digest();
  const tail = [digest[0]!, digest[1]!, digest[2]!].map((b) => b.toString(16).padStart(2, '0'));
  return `${prefix.toLowerCase()}:${tail.join(':')}`;
}

export function normalizeMac(mac: string): string {
  const hex = mac.replace(/[^0-9a-fA-F]/g, '').toLowerCase();
  if (hex.length !== 12) throw new UsageError('MAC_INVALID', `"${mac}" is not a MAC address`);
  return hex.match(/../g)!.join(':');
}
