import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { VmPlan, VmSeed } from '@labctl/core/provider';
import { generateHostKey, type HostKeyType } from './keys.js';
import { type SeedIdentity, type StaticAddress, seedFiles } from './nocloud.js';

/**
 * A VM's identity, made before the VM exists: its own SSH host keys (the public halves go to the
 * state and known_hosts at once, so the key is pinned before first boot) and the NoCloud seed that
 * carries them (the private halves live only there). Each call makes a new identity: it is for a VM
 * about to be made, never for one that exists.
 */
export interface IdentityOptions {
  hostKeyTypes?: HostKeyType[];
  /** Public keys allowed to log in; default: the VM's ssh.keyFile + ".pub". */
  authorizedKeys?: string[];
  disableRoot?: boolean;
  userData?: Record<string, unknown>;
}

export async function makeSeed(vm: VmPlan, options: IdentityOptions = {}): Promise<VmSeed> {
  const hostKeys = (options.hostKeyTypes ?? ['ed25519']).map((type) => generateHostKey(type, vm.name));
  const authorizedKeys = options.authorizedKeys ?? (vm.ssh.keyFile ? await publicKeyOf(vm.ssh.keyFile) : []);
  const instanceId = `${vm.name}-${randomBytes(6).toString('hex')}`;
  const identity: SeedIdentity = {
    hostname: vm.name,
    instanceId,
    mac: vm.mac,
    user: vm.ssh.user,
    authorizedKeys,
    hostKeys,
    ...(options.disableRoot !== undefined ? { disableRoot: options.disableRoot } : {}),
    ...(vm.address ? { network: vm.address as StaticAddress } : {}),
    ...(options.userData ? { userData: options.userData } : {}),
  };
  return {
    instanceId,
    hostKeys: hostKeys.map((key) => key.publicKey),
    files: seedFiles(identity).map((file) => ({ name: file.name, data: String(file.data) })),
  };
}

/** The login key's public half, one line per key (comments dropped). */
async function publicKeyOf(keyFile: string): Promise<string[]> {
  const text = await readFile(`${keyFile}.pub`, 'utf8');
  return text
    .split('\n')
    .map((line) => line.trim().split(/\s+/).slice(0, 2).join(' '))
    .filter((line) => line.length > 0 && !line.startsWith('#'));
}
