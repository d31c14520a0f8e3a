/**
 * The delegation mesh as data: which msDS-AllowedToDelegateTo values each host needs, and the
 * difference between that and what the directory holds. No I/O here.
 *
 * For every ordered pair (A, B) of hosts, A's computer object gets `<service>/<B's FQDN>` and
 * `<service>/<B's short name>` for each service, and A is "trusted to authenticate for delegation"
 * (protocol transition, UAC 0x1000000) and not trusted for unconstrained delegation (0x80000).
 */
import { UsageError } from '@labctl/core/errors';

export const MIGRATION_SERVICE = 'Microsoft Virtual System Migration Service';
export const DEFAULT_SERVICES: readonly string[] = [MIGRATION_SERVICE, 'cifs'];
export const ALLOWED_TO_DELEGATE_TO = 'msDS-AllowedToDelegateTo';
/** userAccountControl TRUSTED_FOR_DELEGATION: unconstrained delegation, must be clear. */
export const UF_TRUSTED_FOR_DELEGATION = 0x80000;
/** userAccountControl TRUSTED_TO_AUTH_FOR_DELEGATION: "use any authentication protocol", must be set. */
export const UF_TRUSTED_TO_AUTH_FOR_DELEGATION = 0x1000000;

const LABEL_RE = /^[A-Za-z0-9](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?$/;

/** A host as the user named it, and the computer account it stands for. */
export interface HostName {
  /** As given (`hv01`, `HV01.lab.test`). */
  given: string;
  /** NetBIOS-style short name, upper case: the key everything is matched on. */
  short: string;
}

/** Parse host names; refuse anything that is not a DNS name (exit 2, before any connection). */
export function parseHostNames(names: readonly string[]): { hosts: HostName[]; duplicates: string[] } {
  const hosts: HostName[] = [];
  const duplicates: string[] = [];
  const seen = new Set<string>();
  for (const raw of names) {
    const given = raw.trim();
    if (given === '') continue;
    const labels = given.replace(/\.$/, '').split('.');
    if (!labels.every((label) => LABEL_RE.test(label))) {
      throw new UsageError('DELEGATION_BAD_HOST', `"${given}" is not a host name`, {
        hint: 'Use computer names such as hv01 or hv01.lab.example (letters, digits, "-", "_").',
      });
    }
    const short = labels[0]!.toUpperCase();
    if (short.length > 15) {
      throw new UsageError('DELEGATION_BAD_HOST', `"${given}": a computer's short name has at most 15 characters`, {
        hint: 'Use the computer name (sAMAccountName without the trailing $).',
      });
    }
    if (seen.has(short)) {
      duplicates.push(given);
      continue;
    }
    seen.add(short);
    hosts.push({ given, short });
  }
  return { hosts, duplicates };
}

export function validateServices(services: readonly string[]): string[] {
  const out = services.map((service) => service.trim()).filter((service) => service !== '');
  if (out.length === 0)
    throw new UsageError('DELEGATION_BAD_SERVICE', 'the service list is empty', {
      hint: `The default is "${DEFAULT_SERVICES.join('", "')}".`,
    });
  for (const service of out) {
    if (service.includes('/') || /[\u0000-\u001f\u007f]/.test(service)) {
      throw new UsageError('DELEGATION_BAD_SERVICE', `"${service}" is not a service class`, {
        hint: 'A service class is the part of an SPN before the "/", e.g. cifs or "Microsoft Virtual System Migration Service".',
      });
    }
  }
  return out;
}

/** A host's computer object, as read from the directory. */
export interface ComputerObject {
  short: string;
  dn: string;
  dnsHostName: string | undefined;
  servicePrincipalNames: string[];
  allowedToDelegateTo: string[];
  userAccountControl: number;
}

/** What a host is called in delegation values: FQDN (from dNSHostName when AD has one) and short name. */
export interface TargetNames {
  short: string;
  fqdn: string;
}

export function targetNames(short: string, domain: string, dnsHostName?: string): TargetNames {
  return { short: short.toUpperCase(), fqdn: (dnsHostName ?? `${short}.${domain}`).toLowerCase() };
}

/** The values `source` needs: every service to every other target, FQDN and short name. */
export function wantedValues(source: string, targets: readonly TargetNames[], services: readonly string[]): string[] {
  const values: string[] = [];
  for (const target of targets) {
    if (target.short === source.toUpperCase()) continue;
    for (const service of services) values.push(`${service}/${target.fqdn}`, `${service}/${target.short}`);
  }
  return values;
}

/** The userAccountControl a delegating host should have: any other bit is kept as it is. */
export function delegatingFlags(uac: number): number {
  return ((uac | UF_TRUSTED_TO_AUTH_FOR_DELEGATION) & ~UF_TRUSTED_FOR_DELEGATION) >>> 0;
}

export function hasMigrationSpn(object: ComputerObject): boolean {
  const prefix = `${MIGRATION_SERVICE.toLowerCase()}/`;
  return object.servicePrincipalNames.some((spn) => spn.toLowerCase().startsWith(prefix));
}

/** One host's change: values to add, stored values to delete, and the UAC swap (from -> to). */
export interface HostChange {
  host: string;
  dn: string;
  add: string[];
  remove: string[];
  userAccountControl: { from: number; to: number } | null;
}

export function isNoop(change: HostChange): boolean {
  return change.add.length === 0 && change.remove.length === 0 && change.userAccountControl === null;
}

/** The values `wanted` that the object lacks; AD compares these values case-insensitively, Samba does not dedupe them. */
export function diffForApply(object: ComputerObject, wanted: readonly string[]): HostChange {
  const present = new Set(object.allowedToDelegateTo.map((value) => value.toLowerCase()));
  const add: string[] = [];
  for (const value of wanted) {
    const key = value.toLowerCase();
    if (present.has(key)) continue;
    present.add(key);
    add.push(value);
  }
  const to = delegatingFlags(object.userAccountControl);
  return {
    host: object.short,
    dn: object.dn,
    add,
    remove: [],
    userAccountControl: to === object.userAccountControl ? null : { from: object.userAccountControl, to },
  };
}

/**
 * Exactly labctl's values, as they are stored (any casing), and with `resetFlags` the protocol
 * transition bit. Unconstrained delegation is never switched back on: labctl cannot know it was on.
 */
export function diffForRemove(object: ComputerObject, wanted: readonly string[], resetFlags: boolean): HostChange {
  const ours = new Set(wanted.map((value) => value.toLowerCase()));
  const remove = object.allowedToDelegateTo.filter((value) => ours.has(value.toLowerCase()));
  const to = (object.userAccountControl & ~UF_TRUSTED_TO_AUTH_FOR_DELEGATION) >>> 0;
  return {
    host: object.short,
    dn: object.dn,
    add: [],
    remove,
    userAccountControl: resetFlags && to !== object.userAccountControl ? { from: object.userAccountControl, to } : null,
  };
}

/** What `verify` reports for a host that is not configured. */
export interface HostGap {
  host: string;
  missingValues: string[];
  protocolTransition: boolean;
  unconstrained: boolean;
}

export function gapOf(object: ComputerObject, wanted: readonly string[]): HostGap | undefined {
  const change = diffForApply(object, wanted);
  const protocolTransition = (object.userAccountControl & UF_TRUSTED_TO_AUTH_FOR_DELEGATION) !== 0;
  const unconstrained = (object.userAccountControl & UF_TRUSTED_FOR_DELEGATION) !== 0;
  if (change.add.length === 0 && protocolTransition && !unconstrained) return undefined;
  return { host: object.short, missingValues: change.add, protocolTransition, unconstrained };
}
