#!/usr/bin/env node
// A simulated Hyper-V host's powershell.exe: the command sshd runs for the test user (authorized_keys
// `command=`), or the `powershell.exe`/`pwsh` labctl's local transport finds on PATH. It checks the
// command line is what Windows would accept from labctl (`powershell.exe|pwsh -NoProfile
// -NonInteractive -EncodedCommand <base64 UTF-16LE>`, within cmd.exe's 8191 characters), logs which
// script ran, and then hands exactly that command line and stdin to a real PowerShell 7 (pwsh),
// with the Hyper-V simulator module (modules/Hyper-V) and the Windows stand-ins
// (windows/LabctlWindowsSim) on PSModulePath. Everything the script does, its output, CLIXML on
// stderr and exit code come from the real engine; the host's state is STATE_DIR (see Hyper-V.psm1).
//
// Usage (forced command):  node host.mjs STATE_BASE            state in STATE_BASE/<sshd port>
// Usage (local process):   node host.mjs STATE_BASE --argv0 powershell.exe|pwsh ARGS...   state in STATE_BASE/local
// Scenario knobs read here (STATE_DIR/scenario.json): sleepMs (delay before running), dropOn (the
// SSH session dies when this script runs), noHyperV (no Hyper-V module on the host),
// fileSizeLimitBytes (writes beyond it fail: a volume filling up mid-copy), defaultShell (sshd's
// DefaultShell is PowerShell: the command line runs inside an outer PowerShell). The others are
// the simulator module's.
import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, '../../..');
const local = process.argv[3] === '--argv0';
const stateDir = join(process.argv[2], local ? 'local' : ((process.env.SSH_CONNECTION ?? '').split(' ')[3] ?? 'local'));
const command = local ? process.argv.slice(4).join(' ') : (process.env.SSH_ORIGINAL_COMMAND ?? '');
const scenario = readJson(join(stateDir, 'scenario.json'), {});

function readJson(file, fallback) {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return fallback;
  }
}

/** The pwsh to run: LABCTL_PWSH, or the one scripts/setup.sh installs, or pwsh on PATH. */
function pwshPath() {
  if (process.env.LABCTL_PWSH) return process.env.LABCTL_PWSH;
  const installed = join(repoRoot, '.tools/pwsh/pwsh');
  return existsSync(installed) ? installed : 'pwsh';
}

const match = /^(powershell\.exe|pwsh) -NoProfile -NonInteractive -EncodedCommand ([A-Za-z0-9+/=]+)$/.exec(command);
if (!match) {
  process.stderr.write(
    `'${command.split(' ')[0]}' is not recognized as an internal or external command,\r\noperable program or batch file.\r\n`,
  );
  process.exit(1);
}
if (command.length > 8191) {
  process.stderr.write('The command line is too long.\r\n');
  process.exit(1);
}

const stdin = readFileSync(0, 'utf8');
const [scriptPart = '', inputPart = ''] = stdin.split('.');
const script = Buffer.from(scriptPart.replace(/\s+/g, ''), 'base64').toString('utf8');
const inputJson = Buffer.from(inputPart.replace(/\s+/g, ''), 'base64').toString('utf8');
const name = /^# labctl-script: ([a-z_]+)/.exec(script)?.[1] ?? 'unknown';
let input = {};
try {
  input = JSON.parse(inputJson);
} catch {
  // The script's own ConvertFrom-Json reports it.
}
// Values must stay data: no user value may appear inside the script text (checked here because a
// real host would run such a script without complaint).
const SCRIPT_WORDS = new Set([
  'linked',
  'full',
  'linux',
  'windows',
  'off',
  'revert',
  'delete',
  'facts',
  'Standard',
  'Production',
]);
const leaves = [];
(function collect(value) {
  if (typeof value === 'string') leaves.push(value);
  else if (value && typeof value === 'object') for (const item of Object.values(value)) collect(item);
})(input);
const spliced = leaves.find((leaf) => leaf.length >= 5 && !SCRIPT_WORDS.has(leaf) && script.includes(leaf));
if (spliced !== undefined) {
  process.stderr.write(`simulated host: input value spliced into the script: ${spliced}\r\n`);
  process.exit(1);
}

appendFileSync(
  join(stateDir, 'invocations.log'),
  `${JSON.stringify({ script: name, shell: match[1], commandLength: command.length, stdinBytes: stdin.length, vms: Array.isArray(input.vms) ? input.vms.length : undefined })}\n`,
);

if (scenario.dropOn === name) {
  // The SSH session dies mid-run: kill sshd's session process (our parent, exec'd into). Run
  // locally, our parent is labctl itself: this process dies instead (killed, no exit status).
  process.kill(local ? process.pid : process.ppid, 'SIGKILL');
  process.exit(137);
}

const modules = [join(here, 'windows'), ...(scenario.noHyperV ? [] : [join(here, 'modules')])];
const env = {
  ...process.env,
  PSModulePath: modules.join(delimiter),
  LABCTL_HYPERV_SIM: stateDir,
  LABCTL_HYPERV_SIM_DLL: process.env.LABCTL_HYPERV_SIM_DLL ?? join(process.argv[2], 'hyperv-sim.dll'),
  LABCTL_SIM_SCRIPT: name,
  COMPUTERNAME: scenario.computerName ?? 'HV-FAKE',
  POWERSHELL_TELEMETRY_OPTOUT: '1',
  POWERSHELL_UPDATECHECK: 'Off',
  DOTNET_CLI_TELEMETRY_OPTOUT: '1',
};
if (!env.HOME || !existsSync(env.HOME)) env.HOME = stateDir;

const pwsh = pwshPath();
// The exact arguments labctl sent, to the real engine (its name on Windows is powershell.exe).
let file = pwsh;
let args = command.split(' ').slice(1);
if (scenario.defaultShell) {
  // sshd's DefaultShell is PowerShell: Windows OpenSSH runs `<shell> -c "<command line>"`, so the
  // bootstrap runs as a native command inside an outer PowerShell.
  args = ['-NoProfile', '-NonInteractive', '-Command', `& '${pwsh}' ${args.join(' ')}; exit $LASTEXITCODE`];
}
if (scenario.fileSizeLimitBytes) {
  // A volume that fills up: writes past the limit fail with EFBIG (SIGXFSZ ignored), like a full disk.
  // CoreCLR's W^X double mapping sizes a memfd past such a limit and cannot start: turned off here.
  env.DOTNET_EnableWriteXorExecute = '0';
  args = [
    '-c',
    `trap '' XFSZ; ulimit -f ${Math.ceil(scenario.fileSizeLimitBytes / 512)}; exec "$0" "$@"`,
    file,
    ...args,
  ];
  file = '/bin/sh';
}

setTimeout(() => {
  const child = spawn(file, args, { env, stdio: ['pipe', 'inherit', 'inherit'] });
  child.on('error', (error) => {
    process.stderr.write(`simulated host: cannot run ${pwsh}: ${error.message}\r\n`);
    process.exit(1);
  });
  child.on('close', (code, signal) => process.exit(signal ? 128 : (code ?? 1)));
  child.stdin.on('error', () => {});
  child.stdin.end(stdin);
}, scenario.sleepMs ?? 0);
