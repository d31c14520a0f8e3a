import type { VmState } from '@labctl/core/state';

/**
 * Tolerant readers for what Hyper-V cmdlets print as JSON. labctl's scripts already convert enums
 * to names and wrap arrays, but a host may run PowerShell 5.1 or 7 and older scripts may have
 * slipped a raw value through, so every reader accepts the shapes listed in
 * docs/hyperv.md ("Output shapes"): numbers or names for enums; `[]`, `null`, `[null]`, `[""]` and
 * 5.1's `{"value":[…],"Count":n}` for arrays.
 */

/** VMState numbers that are stable across Windows builds (the Critical ones move: map by name). */
const VM_STATE_NAMES: Record<number, string> = {
  1: 'Other',
  2: 'Running',
  3: 'Off',
  4: 'Stopping',
  6: 'Saved',
  9: 'Paused',
  10: 'Starting',
  11: 'Reset',
  32773: 'Saving',
  32776: 'Pausing',
  32777: 'Resuming',
  32779: 'FastSaved',
  32780: 'FastSaving',
};

/** The VMState name, whether it came as a name or as a 5.1 number. */
export function vmStateName(value: unknown): string {
  if (typeof value === 'number') return VM_STATE_NAMES[value] ?? `State${value}`;
  if (typeof value === 'string') return value;
  return 'Unknown';
}

/** labctl's VM state for a Hyper-V VMState. */
export function labctlState(value: unknown): VmState {
  const name = vmStateName(value);
  if (name === 'not_created') return 'missing';
  if (name === 'PausedCritical') return 'paused-critical';
  if (/Critical$/.test(name)) return 'failed';
  switch (name) {
    case 'Running':
      return 'running';
    case 'Off':
    case 'Saved':
    case 'FastSaved':
    case 'Paused':
      return 'stopped';
    case 'Starting':
    case 'Resuming':
    case 'Reset':
      return 'starting';
    default:
      return 'unknown';
  }
}

/** A string array from any of the shapes PowerShell gives for one; empty entries dropped. */
export function stringArray(value: unknown): string[] {
  if (value === null || value === undefined) return [];
  if (Array.isArray(value))
    return value.filter((item) => item !== null && item !== undefined && String(item) !== '').map(String);
  if (typeof value === 'object' && 'value' in (value as Record<string, unknown>))
    return stringArray((value as { value: unknown }).value);
  if (typeof value === 'string') return value === '' ? [] : [value];
  return [String(value)];
}

/** An array of objects: a bare object (one element in 5.1) becomes a one-element array. */
export function objectArray<T>(value: unknown): T[] {
  if (value === null || value === undefined || value === '') return [];
  if (Array.isArray(value)) return value.filter((item) => item !== null && item !== undefined) as T[];
  if (
    typeof value === 'object' &&
    'value' in (value as Record<string, unknown>) &&
    'Count' in (value as Record<string, unknown>)
  ) {
    return objectArray<T>((value as { value: unknown }).value);
  }
  return [value as T];
}

/** Hyper-V MACs are 12 hex digits without separators; labctl writes 00:15:5D:xx:xx:xx. */
export function colonMac(value: string | null | undefined): string | undefined {
  if (!value) return undefined;
  const hex = value.replace(/[^0-9a-fA-F]/g, '').toUpperCase();
  if (hex.length !== 12 || /^0+$/.test(hex)) return undefined;
  return hex.match(/.{2}/g)?.join(':');
}

export function hyperVMac(value: string): string {
  return value.replace(/[^0-9a-fA-F]/g, '').toUpperCase();
}
