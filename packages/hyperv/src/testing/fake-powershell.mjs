#!/usr/bin/env node
// Stand-in for powershell.exe on a Hyper-V host, run by sshd as the forced command of the test
// user (authorized_keys `command=`). It does what the real host does with labctl's command line:
// checks it is `powershell.exe|pwsh -NoProfile -NonInteractive -EncodedCommand <base64 UTF-16LE>`
// within cmd.exe's 8191-character limit, decodes the bootstrap, reads the script and its JSON
// input from stdin, and answers the way Windows PowerShell 5.1 would: CRLF lines, 5.1's JSON
// escapes (\u0027 …), CLIXML progress noise on stderr, CLIXML error records when a script throws.
// The "Hyper-V host" is a JSON file (VMs, disk files, switches) in STATE_DIR, changed by the
// operations like the real cmdlets would; shapes follow /work/shared/hyperv-facts.md.
// Usage (as forced command): node fake-powershell.mjs STATE_DIR
// Usage (as a local process, scripts/testbed/hyperv-local.sh): node fake-powershell.mjs STATE_DIR
//   --argv0 powershell.exe|pwsh ARGS... — ARGS are what labctl's local runner passes to the
//   executable; the command line is rebuilt from them and checked the same way; state in STATE_DIR/local.
// Test knobs in STATE_DIR/scenario.json: sleepMs, dropOn, throwOn, failCreate[], kvp{vm: none|nocontact|disabled|late},
// computerName, failSetVMHost (Set-VMHost -VirtualMachineMigrationAuthenticationType is access denied).
import { randomUUID } from 'node:crypto';
import { appendFileSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

// One state directory per sshd port, so several fake hosts can share one test user.
const local = process.argv[3] === '--argv0';
const stateDir = join(process.argv[2], local ? 'local' : ((process.env.SSH_CONNECTION ?? '').split(' ')[3] ?? 'local'));
const CRLF = '\r\n';
const command = local ? process.argv.slice(4).join(' ') : (process.env.SSH_ORIGINAL_COMMAND ?? '');
const scenario = readJson(join(stateDir, 'scenario.json'), {});

function readJson(file, fallback) {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return fallback;
  }
}

/** ConvertTo-Json -Compress as 5.1 writes it: ' < > & as \u escapes. */
function json51(value) {
  return JSON.stringify(value).replace(/'/g, '\\u0027').replace(/</g, '\\u003c').replace(/>/g, '\\u003e').replace(/&/g, '\\u0026');
}

function clixmlEscape(text) {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/[\r\n\u0000-\u001f_]/g, (c) => (c === '_' ? '_x005F_' : `_x${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}_`));
}

const PROGRESS =
  '<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04"><Obj S="progress" RefId="0"><TN RefId="0"><T>System.Management.Automation.PSCustomObject</T><T>System.Object</T></TN><MS><I64 N="SourceId">1</I64><PR N="Record"><AV>Preparing modules for first use.</AV><AI>0</AI><Nil /><PI>-1</PI><PC>-1</PC><T>Completed</T><SR>-1</SR><SD> </SD></PR></MS></Obj></Objs>';

function clixmlError(message, fqid, category) {
  const lines = [message, 'At line:1 char:1', '+ & ([scriptblock]::Create($labctlScript)) -InputJson $labctlInput', '+ ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~', `    + CategoryInfo          : ${category}`, `    + FullyQualifiedErrorId : ${fqid}`, ' '];
  return `<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">${lines.map((line) => `<S S="Error">${clixmlEscape(`${line}\r\n`)}</S>`).join('')}</Objs>`;
}

function fail(message, fqid = 'RuntimeException', category = 'OperationStopped: (:) [], RuntimeException') {
  process.stderr.write(`#< CLIXML${CRLF}${PROGRESS}${clixmlError(message, fqid, category)}`);
  process.exit(1);
}

const match = /^(powershell\.exe|pwsh) -NoProfile -NonInteractive -EncodedCommand ([A-Za-z0-9+/=]+)$/.exec(command);
if (!match) {
  process.stderr.write(`'${command.split(' ')[0]}' is not recognized as an internal or external command,\r\noperable program or batch file.\r\n`);
  process.exit(1);
}
if (command.length > 8191) {
  process.stderr.write('The command line is too long.\r\n');
  process.exit(1);
}
const bootstrap = Buffer.from(match[2], 'base64').toString('utf16le');
if (!bootstrap.includes('[Console]::In.ReadToEnd()') || !bootstrap.includes('[scriptblock]::Create(')) fail('fake host: unexpected bootstrap');

const stdin = readFileSync(0, 'utf8');
const [scriptPart = '', inputPart = ''] = stdin.split('.');
const script = Buffer.from(scriptPart.replace(/\s+/g, ''), 'base64').toString('utf8');
const inputJson = Buffer.from(inputPart.replace(/\s+/g, ''), 'base64').toString('utf8');
const name = /^# labctl-script: ([a-z_]+)/.exec(script)?.[1];
if (!name) fail('fake host: not a labctl script');
if (!script.includes('param([string]$InputJson, [string]$InputPath)')) fail('fake host: script has no InputJson parameter');
let input;
try {
  input = JSON.parse(inputJson);
} catch {
  fail('Invalid JSON primitive: .', 'System.ArgumentException,Microsoft.PowerShell.Commands.ConvertFromJsonCommand', 'NotSpecified: (:) [ConvertFrom-Json], ArgumentException');
}
// Values must stay data: no user value may appear inside the script text.
const SCRIPT_WORDS = new Set(['linked', 'full', 'linux', 'windows', 'off']);
const leaves = [];
(function collect(value) {
  if (typeof value === 'string') leaves.push(value);
  else if (value && typeof value === 'object') for (const item of Object.values(value)) collect(item);
})(input);
for (const leaf of leaves) if (leaf.length >= 5 && !SCRIPT_WORDS.has(leaf) && script.includes(leaf)) fail(`fake host: input value spliced into script: ${leaf}`);

appendFileSync(join(stateDir, 'invocations.log'), `${JSON.stringify({ script: name, shell: match[1], commandLength: command.length, stdinBytes: stdin.length, vms: Array.isArray(input.vms) ? input.vms.length : undefined })}\n`);

if (scenario.dropOn === name) {
  // The SSH session dies mid-run: kill sshd's session process (our parent, exec'd into). Run
  // locally, our parent is labctl itself: the process dies instead (killed, no exit status).
  process.kill(local ? process.pid : process.ppid, 'SIGKILL');
  process.exit(137);
}
if (scenario.throwOn === name) {
  fail("Hyper-V was unable to find a virtual machine with name \"it's gone\".", 'InvalidParameter,Microsoft.HyperV.PowerShell.Commands.GetVM', 'InvalidArgument: (it\'s gone:String) [Get-VM], VirtualizationException');
}

// One writer at a time: per-host concurrency runs several scripts at once.
const lock = join(stateDir, 'host.lock');
for (let i = 0; ; i++) {
  try {
    mkdirSync(lock);
    break;
  } catch {
    if (i > 400) fail('fake host: state locked');
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
  }
}
const hostFile = join(stateDir, 'host.json');
const host = readJson(hostFile, { vms: [], files: {}, switches: [], unregistered: {} });
const sameFile = (a, b) => typeof a === 'string' && typeof b === 'string' && a.toLowerCase() === b.toLowerCase();
const marker = (vm) => {
  const at = (vm.notes ?? '').indexOf('labctl:');
  if (at < 0) return null;
  try {
    return JSON.parse(vm.notes.slice(at + 7).split('\n')[0]);
  } catch {
    return null;
  }
};
const findVm = (id, vmName) => host.vms.find((vm) => id && vm.id === id) ?? host.vms.find((vm) => vm.name.toLowerCase() === String(vmName).toLowerCase());
const failure = (message, type, fqid) => ({ message, type, fqid, category: 'InvalidOperation' });
const now = Date.now();
/** Get-VMHost's migration fields of a fresh Hyper-V host, as 5.1 serializes them. */
const DEFAULT_VMHOST = {
  VirtualMachineMigrationEnabled: false,
  VirtualMachineMigrationAuthenticationType: 0,
  UseAnyNetworkForMigration: false,
  MaximumVirtualMachineMigrations: 2,
  MigrationNetworks: [],
};

function run() {
  switch (name) {
    case 'get_host_facts': {
      if (scenario.noHyperV) return { computerName: 'HV-FAKE', psVersion: '5.1.17763.1852', hyperVModule: false };
      const usedMemory = host.vms.filter((vm) => vm.state === 'Running').reduce((sum, vm) => sum + vm.memoryBytes, 0);
      return {
        computerName: 'HV-FAKE',
        psVersion: '5.1.17763.1852',
        hyperVModule: true,
        memoryCapacityBytes: 137438953472,
        freeMemoryBytes: (scenario.freeMemoryBytes ?? 68719476736) - usedMemory,
        logicalProcessors: 16,
        virtualHardDiskPath: 'D:\\Hyper-V\\Virtual Hard Disks',
        virtualMachinePath: 'D:\\Hyper-V',
        secureBootTemplates: scenario.secureBootTemplates ?? ['MicrosoftWindows', 'MicrosoftUEFICertificateAuthority', 'OpenSourceShieldedVM'],
        secureBootTemplateParameter: true,
        goldens: (input.goldens ?? []).map((path) => {
          const file = Object.entries(host.files).find(([p]) => sameFile(p, path))?.[1];
          if (!file) return { path, exists: false };
          return {
            path,
            exists: true,
            vhdType: file.type,
            vhdFormat: path.toLowerCase().endsWith('.vhd') ? 'VHD' : 'VHDX',
            parentPath: file.parent ?? '',
            sizeBytes: file.size,
            fileSizeBytes: file.fileSize,
            attachedTo: host.vms.filter((vm) => vm.disks.some((d) => sameFile(d, path))).map((vm) => ({ vm: vm.name, state: vm.state })),
            writableBy: file.writableBy ?? [],
          };
        }),
        switches: (input.switches ?? []).map((s) => {
          const found = host.switches.find((item) => item.name.toLowerCase() === s.toLowerCase());
          return found ? { name: s, exists: true, switchType: found.type } : { name: s, exists: false };
        }),
        names: (input.names ?? []).map((n) => {
          const vm = findVm(undefined, n);
          return vm ? { name: n, exists: true, state: vm.state, lab: marker(vm)?.lab ?? null } : { name: n, exists: false };
        }),
        volumes: (input.diskDirs?.length ? input.diskDirs : ['D:\\Hyper-V\\Virtual Hard Disks']).map((dir) => ({ dir, root: `${dir.slice(0, 2)}\\`, freeBytes: scenario.freeBytes ?? 536870912000, totalBytes: 1099511627776 })),
      };
    }
    case 'create_vms': {
      const results = [];
      let macIndex = host.vms.length;
      const diskDir = input.diskDir ?? `D:\\Hyper-V\\Virtual Hard Disks\\${input.lab}`;
      for (const spec of input.vms) {
        spec.vhdPath = `${diskDir}\\${spec.diskFile}`;
        const existing = findVm(undefined, spec.name);
        if (existing) {
          const m = marker(existing);
          if (m && m.lab === input.lab) results.push({ name: spec.name, ok: true, created: false, id: existing.id, state: existing.state, vhdPath: m.disk });
          else results.push({ name: spec.name, ok: false, created: false, error: failure(`A VM named "${spec.name}" already exists and was not made by this lab; labctl leaves it alone.`, 'System.InvalidOperationException', 'InvalidOperationException') });
          continue;
        }
        if (Object.keys(host.files).some((p) => sameFile(p, spec.vhdPath))) {
          results.push({ name: spec.name, ok: false, created: false, error: failure(`The disk ${spec.vhdPath} already exists; labctl never overwrites a disk it did not just create.`, 'System.IO.IOException', 'IOException') });
          continue;
        }
        const golden = Object.entries(host.files).find(([p]) => sameFile(p, spec.golden))?.[1];
        if (!golden) {
          results.push({ name: spec.name, ok: false, created: false, error: failure(`Failed to get the disk information. The system cannot find the file specified. (0x80070002)`, 'Microsoft.HyperV.PowerShell.VirtualizationException', 'ObjectNotFound,Microsoft.Vhd.PowerShell.Cmdlets.NewVhd') });
          continue;
        }
        if ((scenario.failCreate ?? []).includes(spec.name)) {
          // New-VHD succeeded, New-VM failed: the script removes the disk it made (rollback).
          results.push({ name: spec.name, ok: false, created: false, error: failure(`The operation failed because the file was not found.`, 'Microsoft.HyperV.PowerShell.VirtualizationException', 'OperationFailed,Microsoft.HyperV.PowerShell.Commands.NewVM') });
          continue;
        }
        host.files[spec.vhdPath] = spec.clone === 'full' ? { ...golden, writableBy: [] } : { type: 'Differencing', parent: spec.golden, size: golden.size, fileSize: 4194304 };
        const mac = spec.mac ?? `00155D${(0x100 + macIndex++).toString(16).toUpperCase().padStart(6, '0')}`;
        const vm = {
          name: spec.name,
          id: randomUUID(),
          state: 'Off',
          generation: spec.generation,
          memoryBytes: spec.memoryBytes,
          processors: spec.processors,
          notes: `labctl:${JSON.stringify({ lab: input.lab, group: spec.group, disk: spec.vhdPath })}`,
          disks: [spec.vhdPath],
          secureBoot: spec.generation === 2 ? spec.secureBoot : null,
          automaticCheckpoints: false,
          adapters: [{ name: 'Network Adapter', mac, switch: spec.switch, vlan: spec.vlan }],
        };
        host.vms.push(vm);
        results.push({ name: spec.name, ok: true, created: true, id: vm.id, state: 'Off', vhdPath: spec.vhdPath, mac });
      }
      return { vms: results };
    }
    case 'start_vms':
      return {
        vms: input.vms.map((ref) => {
          const vm = findVm(ref.id, ref.name);
          if (!vm) return { name: ref.name, ok: true, state: 'not_created', started: false };
          const started = vm.state !== 'Running';
          if (started) {
            vm.state = 'Running';
            vm.bootAt = now;
          }
          return { name: ref.name, ok: true, state: vm.state, started };
        }),
      };
    case 'get_adapters':
      return {
        vms: input.vms.map((ref) => {
          const vm = findVm(ref.id, ref.name);
          if (!vm) return { name: ref.name, state: 'not_created', adapters: [] };
          const mode = scenario.kvp?.[vm.name] ?? 'ok';
          const running = vm.state === 'Running';
          const uptime = running ? Math.floor((now - (vm.bootAt ?? now)) / 1000) + (mode === 'late' ? 0 : (scenario.uptimeOffset ?? 600)) : 0;
          const index = host.vms.indexOf(vm);
          return {
            name: ref.name,
            state: vm.state,
            uptimeSeconds: uptime,
            kvpEnabled: mode !== 'disabled',
            kvpStatus: mode === 'nocontact' ? 'NoContact' : mode === 'disabled' ? 'Disabled' : 'Ok',
            adapters: vm.adapters.map((adapter) => ({
              name: adapter.name,
              macAddress: adapter.mac,
              ipAddresses: running && mode === 'ok' ? [`192.168.50.${10 + index}`, `fe80::215:5dff:fe00:${(0x100 + index).toString(16)}`] : [],
              switchName: adapter.switch,
              status: running ? ['Ok'] : [],
            })),
          };
        }),
      };
    case 'list_vms':
      return {
        vms: host.vms
          .filter((vm) => marker(vm)?.lab === input.lab)
          .map((vm) => ({ name: vm.name, id: vm.id, state: vm.state, group: marker(vm).group, vhdPath: marker(vm).disk, generation: vm.generation, mac: vm.adapters[0]?.mac ?? null })),
      };
    case 'remove_vms':
      return {
        vms: input.vms.map((ref) => {
          const vm = findVm(ref.id, ref.name);
          let ownDisk = ref.vhdPath;
          let disks = [];
          if (vm) {
            const m = marker(vm);
            if (!m || m.lab !== input.lab) return { name: ref.name, ok: false, error: failure(`The VM "${ref.name}" was not made by this lab; labctl leaves it alone.`, 'System.InvalidOperationException', 'InvalidOperationException') };
            ownDisk = ownDisk ?? m.disk;
            disks = [...vm.disks];
            host.vms.splice(host.vms.indexOf(vm), 1);
          } else if (ownDisk && host.files[ownDisk]) disks = [ownDisk];
          const inUse = host.vms.flatMap((other) => other.disks);
          const removedDisks = [];
          const keptDisks = [];
          for (const disk of disks) {
            let reason = null;
            if (input.keepDisks) reason = 'kept as asked';
            else if (!sameFile(disk, ownDisk)) reason = 'not the disk labctl made for this VM';
            else if ((input.protect ?? []).some((p) => sameFile(p, disk))) reason = 'golden disk';
            else if (inUse.some((p) => sameFile(p, disk))) reason = 'attached to another VM';
            if (reason) keptDisks.push({ path: disk, reason });
            else {
              delete host.files[Object.keys(host.files).find((p) => sameFile(p, disk))];
              removedDisks.push(disk);
            }
          }
          return { name: ref.name, ok: true, state: vm ? 'removed' : 'not_created', removedDisks, keptDisks };
        }),
      };
    case 'register_vms':
      return {
        vms: input.paths.map((path) => {
          const id = path.split('\\').pop().replace(/\.(vmcx|xml)$/i, '');
          const already = host.vms.find((vm) => vm.id.toLowerCase() === id.toLowerCase());
          if (already) return { path, ok: true, registered: false, already: true, name: already.name, id, fixes: [], remaining: [] };
          const config = host.unregistered[path];
          if (!config) return { path, ok: false, registered: false, error: failure(`The file name at "${path}" is not in GUID format.`, 'Microsoft.HyperV.PowerShell.VirtualizationException', 'InvalidParameter,Microsoft.HyperV.PowerShell.Commands.CompareVM') };
          const fixes = [];
          const remaining = [];
          let switchName = config.switch;
          if (!host.switches.some((s) => s.name === config.switch)) {
            const message = `Could not find Ethernet switch '${config.switch}'.`;
            if (input.switch && host.switches.some((s) => s.name === input.switch)) {
              switchName = input.switch;
              fixes.push({ problem: message, fix: `connected to switch ${input.switch}` });
            } else if (input.switch) {
              remaining.push({ message, messageId: 33012, sourceType: 'VMNetworkAdapter', sourceName: 'Network Adapter' });
            } else {
              switchName = null;
              fixes.push({ problem: message, fix: 'network adapter disconnected' });
            }
          }
          const disks = [];
          for (const disk of config.disks) {
            if (host.files[disk]) {
              disks.push(disk);
              continue;
            }
            const message = `Virtual hard disk file '${disk}' not found.`;
            const candidate = input.vhdDir ? `${input.vhdDir.replace(/\\+$/, '')}\\${disk.split('\\').pop()}` : null;
            if (candidate && host.files[candidate]) {
              disks.push(candidate);
              fixes.push({ problem: message, fix: `disk path set to ${candidate}` });
            } else remaining.push({ message, messageId: 40010, sourceType: 'HardDiskDrive', sourceName: 'Hard Drive on SCSI controller number 0 at location 0' });
          }
          if (remaining.length > 0 || input.dryRun) return { path, ok: remaining.length === 0, registered: false, already: false, name: config.name, id, fixes, remaining };
          host.vms.push({ name: config.name, id, state: 'Off', generation: 2, memoryBytes: 2147483648, notes: config.notes ?? '', disks, adapters: [{ name: 'Network Adapter', mac: '00155D00AA01', switch: switchName }] });
          delete host.unregistered[path];
          return { path, ok: true, registered: true, already: false, name: config.name, id, fixes, remaining: [] };
        }),
      };
    case 'configure_migration': {
      // host.vmHost holds Get-VMHost's migration fields as 5.1's ConvertTo-Json prints them (the
      // enum VirtualMachineMigrationAuthenticationType as a number: CredSSP=0, Kerberos=1); the
      // script answers with .ToString() names, as on the real host. Enable-VMMigration sets
      // VirtualMachineMigrationEnabled; Set-VMHost sets the authentication type; no network is added.
      host.vmHost = { ...DEFAULT_VMHOST, ...(host.vmHost ?? {}) };
      const AUTH = ['CredSSP', 'Kerberos'];
      const read = () => ({
        computerName: scenario.computerName ?? 'HV-FAKE',
        fqdn: `${(scenario.computerName ?? 'HV-FAKE').toLowerCase()}.lab.test`,
        migrationEnabled: host.vmHost.VirtualMachineMigrationEnabled,
        authenticationType: AUTH[host.vmHost.VirtualMachineMigrationAuthenticationType] ?? String(host.vmHost.VirtualMachineMigrationAuthenticationType),
        useAnyNetwork: host.vmHost.UseAnyNetworkForMigration,
        migrationNetworks: host.vmHost.MigrationNetworks.map((network) => network.Subnet),
        maximumMigrations: host.vmHost.MaximumVirtualMachineMigrations,
      });
      const before = read();
      const steps = [
        { setting: 'migrationEnabled', from: before.migrationEnabled, to: true, needed: !before.migrationEnabled, changed: false, ok: true, error: null },
        { setting: 'authenticationType', from: before.authenticationType, to: 'Kerberos', needed: before.authenticationType !== 'Kerberos', changed: false, ok: true, error: null },
      ];
      if (!input.apply) return { applied: false, before, after: before, steps };
      for (const step of steps) {
        if (!step.needed) continue;
        if (step.setting === 'migrationEnabled') {
          host.vmHost.VirtualMachineMigrationEnabled = true;
        } else if (scenario.failSetVMHost) {
          step.ok = false;
          step.error = failure(
            `You do not have the required permission to complete this task. Contact the administrator of the authorization policy for the computer '${before.computerName}'.`,
            'Microsoft.HyperV.PowerShell.VirtualizationException',
            'AccessDenied,Microsoft.HyperV.PowerShell.Commands.SetVMHost',
          );
          continue;
        } else {
          host.vmHost.VirtualMachineMigrationAuthenticationType = 1;
        }
        step.changed = true;
      }
      return { applied: true, before, after: read(), steps };
    }
    default:
      fail(`fake host: unknown script ${name}`);
  }
}

let data;
try {
  data = run();
  writeFileSync(hostFile, JSON.stringify(host, null, 1));
} finally {
  rmdirSync(lock);
}
const finish = () => {
  process.stderr.write(`#< CLIXML${CRLF}${PROGRESS}`);
  process.stdout.write(`<<<LABCTL-JSON${CRLF}${json51({ ok: true, data })}${CRLF}LABCTL-JSON>>>${CRLF}`);
  process.exitCode = 0;
};
if (scenario.sleepMs) setTimeout(finish, scenario.sleepMs);
else finish();
