import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import ssh2 from 'ssh2';
import { UsageError } from '@labctl/core/errors';
import type { VmPlan, VmSeed } from '@labctl/core/provider';
import { generateHostKey, type HostKeyType } from './keys.js';
import { type SeedIdentity, seedFiles, userDataProblems } from './nocloud.js';

// ssh2 is CommonJS: its named exports are read from the default export at run time.
const { utils } = ssh2;

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

/** The seed settings of a plan, checked before anything is contacted (exit 2). */
export function checkSeedSettings(vms: readonly VmPlan[]): void {
  const problems = new Set<string>();
  for (const vm of vms)
    for (const problem of userDataProblems(vm.cloudInit?.userData ?? {})) problems.add(`group ${vm.group}: ${problem}`);
  if (problems.size > 0)
    throw new UsageError('SEED_USER_DATA', [...problems].join('; '), {
      hint: 'labctl sets the host name and SSH host keys itself so it can pin them; put the rest of your cloud-config under seed.userData.',
    });
}

/** The seed of a VM about to be made, from its plan (its `cloudInit` settings, address and login key). */
export function makeSeed(vm: VmPlan): Promise<VmSeed> {
  return makeSeedWith(vm, {
    ...(vm.cloudInit?.hostKeyTypes ? { hostKeyTypes: vm.cloudInit.hostKeyTypes } : {}),
    ...(vm.cloudInit?.disableRoot !== undefined ? { disableRoot: vm.cloudInit.disableRoot } : {}),
    ...(vm.cloudInit?.userData ? { userData: vm.cloudInit.userData } : {}),
  });
}

export async function makeSeedWith(vm: VmPlan, options: IdentityOptions = {}): Promise<VmSeed> {
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
    ...(vm.address?.assign === 'static'
      ? {
          network: {
            address: vm.address.address,
            prefix: vm.address.prefix,
            ...(vm.address.gateway ? { gateway: vm.address.gateway } : {}),
            ...(vm.address.dns ? { dns: vm.address.dns } : {}),
          },
        }
      : {}),
    ...(options.userData ? { userData: options.userData } : {}),
  };
  return {
    instanceId,
    hostKeys: hostKeys.map((key) => key.publicKey),
    files: seedFiles(identity).map((file) => ({ name: file.name, data: String(file.data) })),
  };
}

/**
 * The login key's public half: `KEYFILE.pub` (one line per key, comments dropped), or derived from the
 * private key itself when there is no .pub and the key has no passphrase.
 */
async function publicKeyOf(keyFile: string): Promise<string[]> {
  let text: string | undefined;
  try {
    text = await readFile(`${keyFile}.pub`, 'utf8');
  } catch {
    text = undefined;
  }
  if (text !== undefined)
    return text
      .split('\n')
      .map((line) => line.trim().split(/\s+/).slice(0, 2).join(' '))
      .filter((line) => line.length > 0 && !line.startsWith('#'));
  let parsed: ReturnType<typeof utils.parseKey> | undefined;
  try {
    parsed = utils.parseKey(await readFile(keyFile));
  } catch (err) {
    parsed = err as Error;
  }
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!key || key instanceof Error)
    throw new UsageError(
      'SEED_NO_PUBLIC_KEY',
      `cannot read the public half of ssh.keyFile ${keyFile}: no ${keyFile}.pub, and the key itself does not open${key instanceof Error ? ` (${key.message})` : ''}`,
      {
        hint: `The seed authorizes that key for login. Make the .pub with: ssh-keygen -y -f ${keyFile} > ${keyFile}.pub`,
      },
    );
  return [`${key.type} ${key.getPublicSSH().toString('base64')}`];
}
