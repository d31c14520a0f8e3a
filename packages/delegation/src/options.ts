/**
 * Where the delegation settings come from: flags, else the lab file's `delegation:` section, else
 * (for hosts) the lab file's `hosts:` list. Everything is validated here, before any connection,
 * so bad input exits 2 with nothing changed. The password never passes through a flag.
 */
import { UsageError } from '@labctl/core/errors';
import { readRegularFile } from '@labctl/core/files';
import type { LoadedLabFile } from '@labctl/core/spec';
import { z } from 'zod';
import { checkLdapUrl } from './directory.js';
import { baseDnFromDomain } from './ldap-escape.js';
import { DEFAULT_SERVICES, type HostName, parseHostNames, validateServices } from './mesh.js';

/** The lab file's `delegation:` section (core keeps it as a free-form record; its keys are checked here). */
export const DelegationSectionSchema = z.strictObject({
  hosts: z.array(z.string().min(1)).optional(),
  hostsFile: z.string().min(1).optional(),
  domain: z.string().min(1).optional(),
  ldapUrl: z.string().min(1).optional(),
  bindUser: z.string().min(1).optional(),
  caFile: z.string().min(1).optional(),
  baseDn: z.string().min(1).optional(),
  services: z.array(z.string().min(1)).optional(),
  passwordFile: z.string().min(1).optional(),
});
export type DelegationSection = z.infer<typeof DelegationSectionSchema>;

export interface DelegationFlags {
  hosts?: string | undefined;
  hostsFile?: string | undefined;
  domain?: string | undefined;
  ldapUrl?: string | undefined;
  bindUser?: string | undefined;
  caFile?: string | undefined;
  baseDn?: string | undefined;
  services?: string | undefined;
  passwordFile?: string | undefined;
  insecure?: boolean | undefined;
}

export interface DelegationSettings {
  hosts: HostName[];
  duplicates: string[];
  domain: string;
  baseDn: string;
  services: string[];
  /** Only for commands that connect. */
  ldapUrl: string | undefined;
  bindUser: string | undefined;
  caFile: string | undefined;
  passwordFile: string | undefined;
  insecure: boolean;
}

const DOMAIN_RE =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$/;

function labSection(lab: LoadedLabFile | undefined): DelegationSection {
  const raw = lab?.spec.delegation;
  if (raw === undefined) return {};
  const parsed = DelegationSectionSchema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const key = issue.code === 'unrecognized_keys' ? String(issue.keys[0]) : issue.path.map(String).join('.');
  throw new UsageError('LABFILE_INVALID', `${lab?.path ?? 'labctl.yaml'}: delegation.${key}: ${issue.message}`, {
    hint: `Keys of delegation: ${Object.keys(DelegationSectionSchema.shape).join(', ')}.`,
  });
}

/** Host names from a file: one or more per line (comma or space separated), `#` starts a comment. */
export function parseHostsFile(text: string): string[] {
  return text
    .split('\n')
    .map((line) => line.replace(/#.*/, ''))
    .flatMap((line) => line.split(/[\s,]+/))
    .filter((name) => name !== '');
}

async function readHostsFile(path: string): Promise<string[]> {
  return parseHostsFile(
    (await readRegularFile(path, 'hosts file', { maxBytes: 16 * 1024 * 1024, code: 'DELEGATION_HOSTS_FILE' })) ?? '',
  );
}

/** Flags win over the lab file. `connect` = the command talks to a DC (URL and bind user required). */
export async function resolveSettings(
  flags: DelegationFlags,
  lab: LoadedLabFile | undefined,
  connect: boolean,
): Promise<DelegationSettings> {
  const section = labSection(lab);
  const fromLab = (path: string | undefined) => (path === undefined ? undefined : (lab?.resolvePath(path) ?? path));

  let names: string[];
  if (flags.hosts !== undefined) names = flags.hosts.split(',');
  else if (flags.hostsFile !== undefined) names = await readHostsFile(flags.hostsFile);
  else if (section.hosts !== undefined) names = section.hosts;
  else if (section.hostsFile !== undefined) names = await readHostsFile(fromLab(section.hostsFile)!);
  else names = (lab?.spec.hosts ?? []).map((host) => host.name);
  const { hosts, duplicates } = parseHostNames(names);
  if (hosts.length < 2) {
    throw new UsageError(
      'DELEGATION_HOSTS',
      hosts.length === 0 ? 'no hosts given' : 'a delegation mesh needs at least two hosts',
      {
        hint: 'Use --hosts hv01,hv02,hv03, --hosts-file FILE, or delegation.hosts in labctl.yaml.',
      },
    );
  }

  const domain = (flags.domain ?? section.domain)?.replace(/\.$/, '').toLowerCase();
  if (!domain)
    throw new UsageError('DELEGATION_DOMAIN', 'no domain given', {
      hint: 'Use --domain lab.example (the AD DNS domain).',
    });
  if (!DOMAIN_RE.test(domain))
    throw new UsageError('DELEGATION_DOMAIN', `"${domain}" is not a DNS domain name`, {
      hint: 'Use --domain lab.example.',
    });

  const services = validateServices(
    flags.services !== undefined ? flags.services.split(',') : (section.services ?? [...DEFAULT_SERVICES]),
  );
  const baseDn = flags.baseDn ?? section.baseDn ?? baseDnFromDomain(domain);
  const ldapUrl = flags.ldapUrl ?? section.ldapUrl;
  const bindUser = flags.bindUser ?? section.bindUser;
  const insecure = flags.insecure ?? false;
  if (connect) {
    if (!ldapUrl)
      throw new UsageError('LDAP_URL_MISSING', 'no --ldap-url given', {
        hint: 'Use --ldap-url ldaps://dc01.lab.example.',
      });
    checkLdapUrl(ldapUrl, insecure);
    if (!bindUser)
      throw new UsageError('LDAP_BIND_USER_MISSING', 'no --bind-user given', {
        hint: `Use --bind-user admin@${domain} (UPN) or a DN.`,
      });
  }
  return {
    hosts,
    duplicates,
    domain,
    baseDn,
    services,
    ldapUrl,
    bindUser,
    caFile: flags.caFile ?? fromLab(section.caFile),
    passwordFile: flags.passwordFile ?? fromLab(section.passwordFile),
    insecure,
  };
}

export const PASSWORD_ENV = 'LABCTL_LDAP_PASSWORD';

/** The bind password from LABCTL_LDAP_PASSWORD or a file (first line); undefined means "ask". */
export async function passwordFromEnvOrFile(
  passwordFile: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): Promise<string | undefined> {
  if (passwordFile !== undefined) {
    // A FIFO or device as the password file is refused without reading (it would hang the run).
    const text =
      (await readRegularFile(passwordFile, 'password file', { maxBytes: 64 * 1024, code: 'LDAP_PASSWORD_FILE' })) ?? '';
    const password = text.split(/\r?\n/)[0] ?? '';
    if (password === '') throw new UsageError('LDAP_PASSWORD_FILE', `the password file ${passwordFile} is empty`);
    return password;
  }
  const fromEnv = env[PASSWORD_ENV];
  return fromEnv === undefined || fromEnv === '' ? undefined : fromEnv;
}
