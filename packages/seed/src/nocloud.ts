import { isDeepStrictEqual } from 'node:util';
import { parse, stringify } from 'yaml';
import type { IsoFile } from './iso9660.js';
import type { HostKeyPair } from './keys.js';

/**
 * A cloud-init NoCloud seed for one VM: `meta-data` (instance-id, local-hostname), `user-data`
 * (#cloud-config: the VM's host keys, the lab user and its authorized keys, the user's own
 * cloud-config merged in) and `network-config` (version 2: DHCP, or the VM's static address),
 * plus the same facts as plain `labctl-*` files for images without cloud-init (the firstboot-seed
 * template step and the demo guest read those with a shell; no YAML parser needed there).
 * Every document is made from objects by a YAML emitter, never by splicing text, and parsed back
 * before it is used: cloud-init silently drops a part it cannot parse, which users would meet
 * only as "Permission denied (publickey)".
 */
export const SEED_LABEL = 'cidata';

export interface StaticAddress {
  address: string;
  prefix: number;
  gateway?: string;
  dns?: string[];
}

export interface SeedIdentity {
  hostname: string;
  /** Changes whenever the VM is made anew, so cloud-init runs its once-per-instance steps again. */
  instanceId: string;
  /** The adapter's MAC (network-config matches it); empty: the hypervisor assigns one, eth0 is meant. */
  mac: string;
  /** The login user (root, or a user cloud-init creates with passwordless sudo). */
  user: string;
  authorizedKeys: string[];
  hostKeys: HostKeyPair[];
  /** cloud-init's disable_root; default: true unless the user is root. */
  disableRoot?: boolean;
  /** Absent: DHCP on the VM's adapter. */
  network?: StaticAddress;
  /** The lab file's own cloud-config, merged in (labctl's identity keys may not be set there). */
  userData?: Record<string, unknown>;
}

/** Keys of the user's cloud-config that would undo the identity labctl pins: refused. */
export const RESERVED_USER_DATA_KEYS = [
  'hostname',
  'fqdn',
  'preserve_hostname',
  'prefer_fqdn_over_hostname',
  'ssh_keys',
  'ssh_deletekeys',
  'ssh_genkeytypes',
  'disable_root',
] as const;

export class SeedError extends Error {}

export function userDataProblems(userData: Record<string, unknown>): string[] {
  return RESERVED_USER_DATA_KEYS.filter((key) => key in userData).map(
    (key) => `cloud-config key "${key}" is set by labctl (the VM's pinned identity); remove it from the lab file`,
  );
}

export function metaData(identity: SeedIdentity): string {
  return yamlDocument({ 'instance-id': identity.instanceId, 'local-hostname': identity.hostname });
}

export function userData(identity: SeedIdentity): string {
  const own = identity.userData ?? {};
  const problems = userDataProblems(own);
  if (problems.length > 0) throw new SeedError(problems.join('; '));
  const sshKeys: Record<string, string> = {};
  for (const key of identity.hostKeys) {
    sshKeys[`${key.type}_private`] = key.privateKey;
    sshKeys[`${key.type}_public`] = key.publicKey;
  }
  const root = identity.user === 'root';
  const config: Record<string, unknown> = {
    ...own,
    hostname: identity.hostname,
    preserve_hostname: false,
    // The image's own keys are deleted; with ssh_keys given cloud-init generates none (they would
    // not be the pinned ones).
    ssh_deletekeys: true,
    ssh_keys: sshKeys,
    disable_root: identity.disableRoot ?? !root,
  };
  const ownKeys = Array.isArray(own.ssh_authorized_keys) ? (own.ssh_authorized_keys as unknown[]) : [];
  if (root) {
    config.ssh_authorized_keys = [...ownKeys, ...identity.authorizedKeys];
  } else {
    const users = Array.isArray(own.users) ? (own.users as unknown[]) : ['default'];
    config.users = [
      ...users,
      {
        name: identity.user,
        sudo: 'ALL=(ALL) NOPASSWD:ALL',
        shell: '/bin/bash',
        lock_passwd: true,
        ssh_authorized_keys: identity.authorizedKeys,
      },
    ];
  }
  return `#cloud-config\n${yamlDocument(config)}`;
}

export function networkConfig(identity: SeedIdentity): string {
  const match = identity.mac ? { match: { macaddress: colonMac(identity.mac) } } : {};
  const net = identity.network;
  const ethernet = net
    ? {
        ...match,
        dhcp4: false,
        addresses: [`${net.address}/${net.prefix}`],
        ...(net.gateway ? { routes: [{ to: '0.0.0.0/0', via: net.gateway }] } : {}),
        ...(net.dns?.length ? { nameservers: { addresses: net.dns } } : {}),
      }
    : { ...match, dhcp4: true };
  return yamlDocument({ version: 2, ethernets: { eth0: ethernet } });
}

/**
 * The plain files: one value per file (or one per line), so a shell reads them with `read`, never
 * `eval`. `labctl-network` holds KEY=VALUE lines of addresses only.
 */
export function plainFiles(identity: SeedIdentity): IsoFile[] {
  const net = identity.network;
  const mac = identity.mac ? [`MAC=${colonMac(identity.mac)}`] : [];
  const network = net
    ? [
        'MODE=static',
        ...mac,
        `ADDRESS=${net.address}`,
        `PREFIX=${net.prefix}`,
        ...(net.gateway ? [`GATEWAY=${net.gateway}`] : []),
        ...(net.dns?.length ? [`DNS=${net.dns.join(' ')}`] : []),
      ]
    : ['MODE=dhcp', ...mac];
  return [
    { name: 'labctl-hostname', data: `${identity.hostname}\n` },
    { name: 'labctl-instance-id', data: `${identity.instanceId}\n` },
    { name: 'labctl-user', data: `${identity.user}\n` },
    { name: 'labctl-authorized-keys', data: identity.authorizedKeys.map((key) => `${key}\n`).join('') },
    { name: 'labctl-network', data: `${network.join('\n')}\n` },
    ...identity.hostKeys.map((key) => ({ name: `labctl-ssh-host-${key.type}-key`, data: key.privateKey })),
    ...identity.hostKeys.map((key) => ({ name: `labctl-ssh-host-${key.type}-key.pub`, data: `${key.publicKey}\n` })),
  ];
}

function colonMac(mac: string): string {
  return mac.toLowerCase().replaceAll('-', ':');
}

/** Every file of the seed, checked. */
export function seedFiles(identity: SeedIdentity): IsoFile[] {
  checkIdentity(identity);
  return [
    { name: 'meta-data', data: metaData(identity) },
    { name: 'user-data', data: userData(identity) },
    { name: 'network-config', data: networkConfig(identity) },
    ...plainFiles(identity),
  ];
}

const HOSTNAME = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const KEY_LINE = /^(ssh-[a-z0-9-]+|ecdsa-sha2-[a-z0-9-]+|sk-[a-z0-9@.-]+) [A-Za-z0-9+/]+={0,2}( [^\n\r]*)?$/;

/** What goes into plain files and shell must be exactly what it claims to be. */
function checkIdentity(identity: SeedIdentity): void {
  const problems: string[] = [];
  if (!HOSTNAME.test(identity.hostname))
    problems.push(`host name ${JSON.stringify(identity.hostname)}: letters, digits and "-", up to 63`);
  if (!/^[A-Za-z0-9._-]{1,128}$/.test(identity.instanceId))
    problems.push('instance-id: letters, digits, ".", "_", "-"');
  if (!/^[a-z_][a-z0-9_-]{0,31}$/.test(identity.user))
    problems.push(`user ${JSON.stringify(identity.user)}: a POSIX user name (a-z, 0-9, "_", "-")`);
  if (identity.mac && !/^([0-9a-f]{2}[:-]){5}[0-9a-f]{2}$/i.test(identity.mac)) problems.push(`MAC ${identity.mac}`);
  for (const key of [...identity.authorizedKeys, ...identity.hostKeys.map((k) => k.publicKey)])
    if (!KEY_LINE.test(key)) problems.push(`"${key.slice(0, 40)}" is not an OpenSSH public key line`);
  const net = identity.network;
  if (net) {
    for (const address of [net.address, ...(net.gateway ? [net.gateway] : []), ...(net.dns ?? [])])
      if (!IPV4.test(address)) problems.push(`${JSON.stringify(address)} is not an IPv4 address`);
    if (!Number.isInteger(net.prefix) || net.prefix < 1 || net.prefix > 32) problems.push(`prefix ${net.prefix}`);
  }
  if (problems.length > 0) throw new SeedError(`seed for ${identity.hostname}: ${problems.join('; ')}`);
}

/** YAML from an object, parsed back and compared: what cloud-init reads is exactly what was meant. */
function yamlDocument(value: Record<string, unknown>): string {
  const text = stringify(value, { version: '1.1', lineWidth: 0 });
  const back = parse(text, { version: '1.1' }) as unknown;
  if (!isDeepStrictEqual(back, JSON.parse(JSON.stringify(value))))
    throw new SeedError('a seed document does not read back as written (YAML 1.1, as cloud-init reads it)');
  return text;
}
