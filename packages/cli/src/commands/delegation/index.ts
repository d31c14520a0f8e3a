/**
 * `labctl delegation` on its own shows the topic's help; this module also holds the flags and
 * helpers the delegation commands share (oclif would take any other file here for a command).
 */
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { LabctlError, UsageError } from '@labctl/core/errors';
import type { LoadedLabFile } from '@labctl/core/spec';
import {
  type DelegationFlags,
  type DelegationSettings,
  PASSWORD_ENV,
  passwordFromEnvOrFile,
  resolveSettings,
} from '@labctl/delegation/options';
import type { ConnectionSettings, ExecuteReport, ReportedOutcome } from '@labctl/delegation/service';
import { Flags, Help } from '@oclif/core';
import { LabctlCommand } from '../../base-command.js';
import { renderTable } from '../../render.js';

/** Which hosts, which domain, which services: every delegation command takes these. */
export const meshFlags = {
  hosts: Flags.string({
    summary: 'Hyper-V hosts, comma separated (computer names or FQDNs).',
    exclusive: ['hosts-file'],
  }),
  'hosts-file': Flags.string({ summary: 'File with the hosts, one or more per line; # starts a comment.' }),
  domain: Flags.string({ summary: 'AD DNS domain, e.g. lab.example (FQDNs and the base DN come from it).' }),
  services: Flags.string({
    summary: 'Service classes to delegate to, comma separated.',
    description:
      'Default: "Microsoft Virtual System Migration Service,cifs" (live migration and the storage it moves).',
  }),
};

/** How to reach and bind to a domain controller. The password never comes from a flag. */
export const connectionFlags = {
  'ldap-url': Flags.string({
    summary: 'Domain controller: ldaps://dc01.lab.example (ldap:// upgrades with StartTLS).',
  }),
  'bind-user': Flags.string({ summary: 'Who binds: a UPN (admin@lab.example) or a DN.' }),
  'password-file': Flags.string({
    summary: `File whose first line is the bind password (else ${PASSWORD_ENV}, else a prompt).`,
  }),
  'ca-file': Flags.string({
    summary: "PEM file of the CA that signed the DC's certificate (default: the system CAs).",
  }),
  'base-dn': Flags.string({
    summary: 'Where to search for the computer objects (default: from --domain, DC=lab,DC=example).',
  }),
  insecure: Flags.boolean({
    summary: 'Allow a simple bind over plain ldap:// (password in clear text on the wire).',
    default: false,
  }),
};

interface MeshFlagValues {
  hosts?: string | undefined;
  'hosts-file'?: string | undefined;
  domain?: string | undefined;
  services?: string | undefined;
  'ldap-url'?: string | undefined;
  'bind-user'?: string | undefined;
  'password-file'?: string | undefined;
  'ca-file'?: string | undefined;
  'base-dn'?: string | undefined;
  insecure?: boolean | undefined;
}

export async function delegationSettings(
  flags: MeshFlagValues,
  lab: LoadedLabFile,
  connect: boolean,
): Promise<DelegationSettings> {
  const input: DelegationFlags = {
    hosts: flags.hosts,
    hostsFile: flags['hosts-file'],
    domain: flags.domain,
    services: flags.services,
    ldapUrl: flags['ldap-url'],
    bindUser: flags['bind-user'],
    passwordFile: flags['password-file'],
    caFile: flags['ca-file'],
    baseDn: flags['base-dn'],
    insecure: flags.insecure,
  };
  return resolveSettings(input, lab, connect);
}

/** Password from LABCTL_LDAP_PASSWORD or --password-file, else asked on the terminal (not echoed). */
export async function connectionSettings(settings: DelegationSettings): Promise<ConnectionSettings> {
  let password = await passwordFromEnvOrFile(settings.passwordFile);
  if (password === undefined) {
    if (!process.stdin.isTTY) {
      throw new UsageError(
        'LDAP_PASSWORD_MISSING',
        `no bind password (${PASSWORD_ENV}, --password-file, or a terminal to ask on)`,
        {
          hint: `Set ${PASSWORD_ENV} or pass --password-file FILE.`,
        },
      );
    }
    password = await promptHidden(`Password for ${settings.bindUser}: `);
    if (password === '') throw new UsageError('LDAP_PASSWORD_MISSING', 'empty password');
  }
  return {
    url: settings.ldapUrl!,
    bindUser: settings.bindUser!,
    password,
    caFile: settings.caFile,
    insecure: settings.insecure,
  };
}

async function promptHidden(question: string): Promise<string> {
  process.stderr.write(question);
  const muted = new Writable({ write: (_chunk, _encoding, done) => done() });
  const rl = createInterface({ input: process.stdin, output: muted, terminal: true });
  try {
    return await new Promise<string>((resolve) => rl.question('', resolve));
  } finally {
    rl.close();
    process.stderr.write('\n');
  }
}

/** Lines about what the read found that the user should know. */
export function findings(report: {
  duplicates: string[];
  missing: string[];
  ambiguous: string[];
  withoutMigrationSpn: string[];
}): string[] {
  const lines: string[] = [];
  if (report.duplicates.length) lines.push(`given more than once (ignored): ${report.duplicates.join(', ')}`);
  if (report.missing.length)
    lines.push(`not in the directory (skipped, not delegated to): ${report.missing.join(', ')}`);
  if (report.ambiguous.length)
    lines.push(`more than one computer object answers to (skipped): ${report.ambiguous.join(', ')}`);
  if (report.withoutMigrationSpn.length)
    lines.push(
      `no "Microsoft Virtual System Migration Service/*" SPN, is the Hyper-V role installed?: ${report.withoutMigrationSpn.join(', ')}`,
    );
  return lines;
}

export function operationsLine(operations: { searches: number; modifies: number }): string {
  return `directory operations: ${operations.searches} search(es), ${operations.modifies} modify(ies)`;
}

/**
 * Human view of an apply/remove report. When not everything succeeded, `failure` is the error to
 * throw: exit 1, and with --json the whole report travels in the error's details.
 */
export function describeExecuteReport(
  report: ExecuteReport,
  done: string,
): { notes: string[]; text: string; failure?: LabctlError } {
  const lines: string[] = [];
  if (report.changed === 0 && report.failed === 0) {
    lines.push(`Nothing to change: ${report.unchanged} host(s) already ${done}.`);
  } else {
    lines.push(
      renderTable(report.outcomes, [
        { header: 'host', get: (o) => o.host },
        { header: 'result', get: (o) => o.status },
        { header: 'details', get: outcomeDetails },
      ]),
    );
  }
  lines.push(operationsLine(report.operations));
  const view = { notes: findings(report), text: lines.join('\n') };
  if (report.ok) return view;
  const problems = [];
  if (report.failed) problems.push(`${report.failed} host(s) failed`);
  if (report.missing.length) problems.push(`not in the directory: ${report.missing.join(', ')}`);
  if (report.ambiguous.length) problems.push(`ambiguous: ${report.ambiguous.join(', ')}`);
  return {
    ...view,
    failure: new LabctlError('DELEGATION_INCOMPLETE', `not every host is done (${problems.join('; ')})`, {
      hint: 'Fix what the table says and run the same command again; hosts already done are left as they are.',
      details: { ...report },
    }),
  };
}

function outcomeDetails(outcome: ReportedOutcome): string {
  if (outcome.status === 'failed') return outcome.error;
  if (outcome.status === 'unchanged') return 'already done';
  const parts: string[] = [];
  if (outcome.added.length) parts.push(`+${outcome.added.length} value(s)`);
  if (outcome.removed.length) parts.push(`-${outcome.removed.length} value(s)`);
  if (outcome.userAccountControl)
    parts.push(`userAccountControl ${outcome.userAccountControl.from} -> ${outcome.userAccountControl.to}`);
  if (outcome.attempts > 1) parts.push(`${outcome.attempts} attempts (changed by someone else meanwhile)`);
  return parts.join(', ');
}

export default class Delegation extends LabctlCommand<typeof Delegation> {
  static override summary =
    'Kerberos constrained delegation for Hyper-V live migration: plan, apply, verify, remove, script.';
  static override description = 'Shows the delegation commands. See docs/delegation.md.';
  static override examples = [
    {
      description: 'What would change',
      command:
        '<%= config.bin %> delegation plan --hosts hv01,hv02 --domain lab.example --ldap-url ldaps://dc01.lab.example --bind-user admin@lab.example',
    },
    {
      description: 'The PowerShell equivalent',
      command: '<%= config.bin %> delegation script --hosts hv01,hv02 --domain lab.example',
    },
  ];

  async run(): Promise<void> {
    await new Help(this.config).showHelp(['delegation']);
  }
}
