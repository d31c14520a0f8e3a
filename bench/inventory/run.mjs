#!/usr/bin/env node
// Inventory benchmark (not a test): 10,000 hosts.
//   node bench/inventory/run.mjs [HOSTS=10000]
// Measures (1) labctl building + emitting each format in-process, (2) the labctl binary writing each
// format with -o and answering --list through a --script file (wall time, node start included), and
// (3) ansible-inventory --list on each emitted format and on the script. Needs `npx turbo run build`
// (or the inventory and cli packages built) and ansible-core. Prints a Markdown table; JSON goes to
// bench/results/inventory.json.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dynamicList, emitInventory } from '@labctl/inventory/emit';
import { buildInventory } from '@labctl/inventory/model';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const bin = join(root, 'packages/cli/bin/run.js');
const hosts = Number(process.argv[2] ?? 10_000);
const loadAtStart = loadavg()[0].toFixed(1);
const dir = mkdtempSync(join(tmpdir(), 'inventory-bench-'));
const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl';

const groups = 10;
const vms = Array.from({ length: hosts }, (_, i) => ({
  name: `vm-${String(i + 1).padStart(5, '0')}`,
  group: `group-${i % groups}`,
  provider: 'libvirt',
  state: 'running',
  addresses: ['fe80::5054:ff:fe00:1', `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`],
  ssh: { user: 'lab', port: 22, hostKeys: [KEY] },
  vars: { rack: `r${i % 40}`, role: i % 3 ? 'worker' : 'control plane', motd: 'hello # {{ not templated }}' },
}));
const state = { version: 1, lab: 'bench', vms };
mkdirSync(join(dir, '.labctl'));
writeFileSync(join(dir, '.labctl', 'state.json'), JSON.stringify(state));
writeFileSync(join(dir, 'labctl.yaml'), 'inventory:\n  vars: {ntp: pool.ntp.org}\n  groups:\n    everything:\n      children: [group-0, group-1]\n');

// Wall time and CPU time (user+sys): the machine is shared, so CPU time is the steadier number.
function timed(fn) {
  const start = process.hrtime.bigint();
  const cpu = process.cpuUsage();
  const value = fn();
  const used = process.cpuUsage(cpu);
  return { ms: Math.round(Number(process.hrtime.bigint() - start) / 1e6), cpuMs: Math.round((used.user + used.system) / 1000), value };
}
/** Run a command under bash's `time` (always there, unlike /usr/bin/time); stdout goes to a file. */
function run(cmd, args, env = {}) {
  const out = join(dir, 'run.out');
  const timing = execFileSync('bash', ['-c', 'TIMEFORMAT="%R %U %S"; { time "$@" > "$OUT" 2>/dev/null; } 2>&1', 'bash', cmd, ...args], {
    env: { ...process.env, ...env, OUT: out },
    encoding: 'utf8',
  });
  const [wall, user, sys] = timing.trim().split(/\s+/).slice(-3).map(Number);
  return { ms: Math.round(wall * 1000), cpuMs: Math.round((user + sys) * 1000), value: readFileSync(out) };
}
const ansibleEnv = { ANSIBLE_LOCAL_TEMP: dir, ANSIBLE_INVENTORY_UNPARSED_FAILED: 'true', ANSIBLE_NOCOLOR: '1' };

const rows = [];
const spec = { inventory: { vars: { ntp: 'pool.ntp.org' }, groups: { everything: { children: ['group-0', 'group-1'] } } } };
const built = timed(() => buildInventory(state, spec, { knownHostsFile: join(dir, 'known_hosts') }));
rows.push({ what: `build the model (${hosts} hosts, in-process)`, ms: built.ms, cpuMs: built.cpuMs });
for (const format of ['ini', 'yaml', 'json']) {
  const emitted = timed(() => emitInventory(built.value.inventory, format));
  rows.push({ what: `emit ${format} (in-process)`, ms: emitted.ms, cpuMs: emitted.cpuMs, bytes: emitted.value.length });
}
const list = timed(() => JSON.stringify(dynamicList(built.value.inventory)));
rows.push({ what: 'answer --list (in-process)', ms: list.ms, cpuMs: list.cpuMs, bytes: list.value.length });

const files = {};
for (const format of ['ini', 'yaml', 'json']) {
  const file = join(dir, `hosts.${format}`);
  const result = run('node', [bin, 'inventory', '--lab-dir', dir, '-f', format, '-o', file, '--force']);
  files[format] = file;
  rows.push({ what: `labctl inventory -f ${format} -o FILE (binary)`, ms: result.ms, cpuMs: result.cpuMs, bytes: statSync(file).size });
}
const script = join(dir, 'inventory.sh');
execFileSync('node', [bin, 'inventory', '--lab-dir', dir, '--script', script]);
const scriptList = run(script, ['--list']);
rows.push({ what: 'script --list (binary via the --script file)', ms: scriptList.ms, cpuMs: scriptList.cpuMs, bytes: scriptList.value.length });

for (const [format, file] of [...Object.entries(files), ['script', script]]) {
  const result = run('ansible-inventory', ['-i', file, '--list'], ansibleEnv);
  const parsed = JSON.parse(result.value.toString());
  const seen = Object.keys(parsed._meta.hostvars).length;
  if (seen !== hosts) throw new Error(`ansible-inventory saw ${seen} hosts in ${file}, expected ${hosts}`);
  rows.push({ what: `ansible-inventory -i ${format} --list`, ms: result.ms, cpuMs: result.cpuMs });
}

const machine = `${cpus().length} cores (${cpus()[0]?.model.trim()}), load average at start ${loadAtStart}, at end ${loadavg()[0].toFixed(1)}, node ${process.version}`;
console.log(`Inventory benchmark, ${hosts} hosts, ${machine}\n`);
console.log('| step | wall (ms) | CPU user+sys (ms) | size (bytes) |\n| --- | ---: | ---: | ---: |');
for (const row of rows) console.log(`| ${row.what} | ${row.ms} | ${row.cpuMs} | ${row.bytes ?? ''} |`);
mkdirSync(join(root, 'bench/results'), { recursive: true });
writeFileSync(join(root, 'bench/results/inventory.json'), JSON.stringify({ hosts, machine, at: new Date().toISOString(), rows }, null, 2));
rmSync(dir, { recursive: true, force: true });
