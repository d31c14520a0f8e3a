import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { Attribute, Change, Client } from 'ldapts';

/**
 * The project's Samba AD DC for tests (scripts/testbed/samba-ad.sh), and helpers to seed computer
 * objects that look like domain-joined Hyper-V hosts. Test-only (not part of the built package).
 */
export const SAMBA_AD_SCRIPT = resolve(import.meta.dirname, '../../../../scripts/testbed/samba-ad.sh');

export interface SambaDc {
  dir: string;
  url: string;
  caFile: string;
  otherCaFile: string;
  bindUser: string;
  password: string;
  baseDn: string;
  domain: string;
  samPath: string;
  confPath: string;
  stop(): void;
}

export function startSambaDc(prefix = 'labctl-delegation-'): SambaDc {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  execFileSync(SAMBA_AD_SCRIPT, ['up', dir], { stdio: ['ignore', 'inherit', 'inherit'] });
  const env = Object.fromEntries(
    readFileSync(join(dir, 'ad.env'), 'utf8')
      .split('\n')
      .filter((line) => line.includes('='))
      .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
  ) as Record<string, string>;
  return {
    dir,
    url: env.LDAP_URL!,
    caFile: env.LDAP_CA!,
    otherCaFile: env.LDAP_OTHER_CA!,
    bindUser: env.LDAP_BIND_USER!,
    password: env.LDAP_PASSWORD!,
    baseDn: env.LDAP_BASE_DN!,
    domain: env.AD_DOMAIN!,
    samPath: env.SAMBA_SAM!,
    confPath: env.SAMBA_CONF!,
    stop: () => execFileSync(SAMBA_AD_SCRIPT, ['purge', dir], { stdio: 'inherit' }),
  };
}

export async function adminClient(dc: SambaDc): Promise<Client> {
  const client = new Client({ url: dc.url, tlsOptions: { ca: [readFileSync(dc.caFile)] }, timeout: 30_000 });
  await client.bind(dc.bindUser, dc.password);
  return client;
}

/** The SPNs a domain-joined Hyper-V host registers (short and FQDN). */
export function hyperVSpns(name: string, domain: string, withHyperV = true): string[] {
  const services = ['HOST', 'RestrictedKrbHost', 'WSMAN', 'TERMSRV'];
  if (withHyperV)
    services.push(
      'Microsoft Virtual System Migration Service',
      'Microsoft Virtual Console Service',
      'Hyper-V Replica Service',
    );
  const fqdn = `${name.toLowerCase()}.${domain}`;
  return services.flatMap((service) => [`${service}/${name}`, `${service}/${fqdn}`]);
}

export const UF_WORKSTATION_TRUST_ACCOUNT = 0x1000;

export interface SeedOptions {
  userAccountControl?: number;
  allowedToDelegateTo?: string[];
  withHyperV?: boolean;
}

export function computerDn(dc: SambaDc, name: string): string {
  return `CN=${name},CN=Computers,${dc.baseDn}`;
}

/** Add computer objects the way a joined host looks (enabled, dNSHostName, SPNs, a password). */
export async function seedComputers(
  client: Client,
  dc: SambaDc,
  names: readonly string[],
  options: SeedOptions = {},
): Promise<void> {
  for (const name of names) {
    const attributes: Record<string, string | string[]> = {
      objectClass: ['top', 'person', 'organizationalPerson', 'user', 'computer'],
      cn: name,
      sAMAccountName: `${name}$`,
      userAccountControl: String(options.userAccountControl ?? UF_WORKSTATION_TRUST_ACCOUNT),
      dNSHostName: `${name.toLowerCase()}.${dc.domain}`,
      servicePrincipalName: hyperVSpns(name, dc.domain, options.withHyperV ?? true),
    };
    if (options.allowedToDelegateTo?.length) attributes['msDS-AllowedToDelegateTo'] = options.allowedToDelegateTo;
    await client.add(computerDn(dc, name), attributes);
    // unicodePwd is binary (UTF-16LE, quoted); ldapts' add() takes strings only, so set it with a modify.
    await client.modify(
      computerDn(dc, name),
      new Change({
        operation: 'replace',
        modification: new Attribute({ type: 'unicodePwd', values: [Buffer.from(`"Machine-${name}-Pw!9"`, 'utf16le')] }),
      }),
    );
  }
}

export interface SambaToolView {
  trustedForDelegation: boolean;
  trustedToAuthForDelegation: boolean;
  allowedToDelegateTo: string[];
}

/** `samba-tool delegation show NAME$` straight on the DC's sam.ldb: the reference reading. */
export async function sambaToolShow(dc: SambaDc, name: string): Promise<SambaToolView> {
  const { stdout } = await promisify(execFile)('samba-tool', [
    'delegation',
    'show',
    `${name}$`,
    '-s',
    dc.confPath,
    '-H',
    dc.samPath,
  ]);
  const flag = (name: string) => new RegExp(`^${name}:\\s*True`, 'm').test(stdout);
  const allowedToDelegateTo = [...stdout.matchAll(/^msDS-AllowedToDelegateTo:\s*(.*)$/gm)].map((m) => m[1]!.trim());
  return {
    trustedForDelegation: flag('UF_TRUSTED_FOR_DELEGATION'),
    trustedToAuthForDelegation: flag('UF_TRUSTED_TO_AUTHENTICATE_FOR_DELEGATION'),
    allowedToDelegateTo,
  };
}
