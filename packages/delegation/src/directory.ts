/**
 * The LDAP connection: TLS policy, simple bind, and a count of every directory operation so
 * callers (and the benchmark) can prove how many round trips a command costs.
 */
import { isIP } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import { LabctlError, UsageError } from '@labctl/core/errors';
import { readRegularFile } from '@labctl/core/files';
import { Attribute, Change, Client, type Entry } from 'ldapts';

export interface ConnectOptions {
  /** `ldaps://host[:port]` (default port 636) or `ldap://host[:port]` (StartTLS unless `insecure`). */
  url: string;
  /** UPN (`admin@lab.example`) or DN. */
  bindUser: string;
  password: string;
  /** PEM file with the CA(s) that signed the DC's certificate; the system CAs otherwise. */
  caFile?: string;
  /** Allow a simple bind over plain `ldap://` (the password crosses the network in clear text). */
  insecure?: boolean;
  timeoutMs?: number;
}

export interface OperationCounts {
  searches: number;
  modifies: number;
}

export interface SearchOptions {
  scope: 'base' | 'sub';
  filter?: string;
  attributes: string[];
}

/** An open, bound connection. */
export class Directory {
  readonly operations: OperationCounts = { searches: 0, modifies: 0 };

  constructor(private readonly client: Client) {}

  async search(base: string, options: SearchOptions): Promise<Entry[]> {
    this.operations.searches++;
    try {
      const { searchEntries } = await this.client.search(base, {
        ...options,
        filter: options.filter ?? '(objectClass=*)',
      });
      return searchEntries;
    } catch (error) {
      throw directoryError(error, `search under ${base}`);
    }
  }

  /** Raw modify: LDAP result errors are passed through so callers can tell a conflict from a failure. */
  async modify(dn: string, changes: Change[]): Promise<void> {
    this.operations.modifies++;
    await this.client.modify(dn, changes);
  }

  async close(): Promise<void> {
    await this.client.unbind().catch(() => {});
  }
}

export function change(operation: 'add' | 'delete' | 'replace', type: string, values: string[]): Change {
  return new Change({ operation, modification: new Attribute({ type, values }) });
}

/** Values of an attribute of a search entry, always as strings. */
export function entryValues(entry: Entry, attribute: string): string[] {
  const key = Object.keys(entry).find((name) => name.toLowerCase() === attribute.toLowerCase());
  if (key === undefined) return [];
  const value = entry[key]!;
  const list = Array.isArray(value) ? value : [value];
  return list.map((item) => (Buffer.isBuffer(item) ? item.toString('utf8') : item));
}

export function checkLdapUrl(url: string, insecure: boolean): { secure: 'ldaps' | 'starttls' | 'none' } {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError('LDAP_BAD_URL', `"${url}" is not an LDAP URL`, {
      hint: 'Use ldaps://dc01.lab.example (or ldap://... for StartTLS).',
    });
  }
  if (parsed.protocol === 'ldaps:') return { secure: 'ldaps' };
  if (parsed.protocol === 'ldap:') return { secure: insecure ? 'none' : 'starttls' };
  throw new UsageError('LDAP_BAD_URL', `"${url}": only ldaps:// and ldap:// are supported`, {
    hint: 'Use ldaps://dc01.lab.example (or ldap://... for StartTLS).',
  });
}

/** Connect and bind. ldap:// always upgrades with StartTLS unless `insecure` was asked for explicitly. */
export async function connectDirectory(options: ConnectOptions): Promise<Directory> {
  const { secure } = checkLdapUrl(options.url, options.insecure ?? false);
  const tlsOptions: ConnectionOptions = { minVersion: 'TLSv1.2' };
  if (options.caFile) {
    try {
      tlsOptions.ca = [
        (await readRegularFile(options.caFile, 'CA file', { maxBytes: 1024 * 1024, code: 'LDAP_CA_UNREADABLE' })) ?? '',
      ];
    } catch (error) {
      throw new UsageError(
        'LDAP_CA_UNREADABLE',
        `cannot read the CA file ${options.caFile}: ${(error as Error).message}`,
        {
          hint: "Pass the PEM certificate of the CA that signed the domain controller's LDAPS certificate.",
        },
      );
    }
  }
  const client = new Client({
    url: options.url,
    timeout: options.timeoutMs ?? 30_000,
    connectTimeout: Math.min(options.timeoutMs ?? 10_000, 10_000),
    // Only for ldaps://: ldapts speaks TLS from the first byte whenever it has tlsOptions.
    ...(secure === 'ldaps' ? { tlsOptions } : {}),
  });
  try {
    if (secure === 'starttls') {
      const host = new URL(options.url).hostname.replace(/^\[|\]$/g, '');
      await client.startTLS({ ...tlsOptions, ...(isIP(host) ? {} : { servername: host }) });
    }
    await client.bind(options.bindUser, options.password);
  } catch (error) {
    await client.unbind().catch(() => {});
    throw directoryError(error, `bind to ${options.url} as ${options.bindUser}`);
  }
  return new Directory(client);
}

const TLS_TRUST_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_GET_ISSUER_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** LDAP result code of an ldapts error, if it is one. */
export function ldapResultCode(error: unknown): number | undefined {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'number' ? code : undefined;
}

/** Turn a connection, TLS or LDAP failure into a LabctlError with a hint. Never includes the password. */
export function directoryError(error: unknown, doing: string): LabctlError {
  if (error instanceof LabctlError) return error;
  const code = (error as { code?: unknown } | undefined)?.code;
  const message = error instanceof Error ? error.message.split('\n')[0]! : String(error);
  if (typeof code === 'string' && TLS_TRUST_CODES.has(code)) {
    return new LabctlError('LDAP_TLS_UNTRUSTED', `${doing}: the server's certificate is not trusted (${code})`, {
      hint: 'Pass --ca-file with the CA that signed the DC certificate; the URL host must match the certificate.',
      cause: error,
      details: { tlsError: code },
    });
  }
  if (typeof code === 'string') {
    return new LabctlError('LDAP_UNREACHABLE', `${doing}: ${message}`, {
      hint: 'Check --ldap-url (host and port) and that the domain controller is reachable.',
      cause: error,
      details: { networkError: code },
    });
  }
  switch (code) {
    case 49:
      return new LabctlError('LDAP_BIND_FAILED', `${doing}: invalid credentials`, {
        hint: 'Check --bind-user (UPN such as admin@lab.example, or a DN) and the password.',
        cause: error,
        details: { ldapResultCode: code },
      });
    case 8:
      return new LabctlError('LDAP_STRONG_AUTH_REQUIRED', `${doing}: the server requires an encrypted connection`, {
        hint: 'Use ldaps:// or ldap:// without --insecure (StartTLS).',
        cause: error,
        details: { ldapResultCode: code },
      });
    case 50:
      return new LabctlError('LDAP_ACCESS_DENIED', `${doing}: insufficient access rights`, {
        hint: 'Setting delegation needs SeEnableDelegationPrivilege on the DC (Domain Admins by default).',
        cause: error,
        details: { ldapResultCode: code },
      });
    default:
      return new LabctlError('LDAP_FAILED', `${doing}: ${message}`, {
        cause: error,
        ...(typeof code === 'number' ? { details: { ldapResultCode: code } } : {}),
      });
  }
}
