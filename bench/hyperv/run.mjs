// PowerShell round trips for "create + start + find IPs" of N VMs on one Hyper-V host, through the
// real provider, real ssh2 and a real sshd whose forced command runs a real pwsh against the Hyper-V simulator
// (scripts/testbed/hyperv-hosts.sh). Compares labctl's batches with one invocation per VM and
// operation (the by-hand loop of seed 002: New-VM, copy VHD, Start-VM, Get-VMNetworkAdapter per VM).
// Then the same through `labctl create`'s provider-neutral flow (createLab + discovery, addresses from
// KVP without the SSH wait: the recorded guests' addresses are not reachable) at several --concurrency.
// Needs root (test sshd) and a build (npx turbo run build). Usage: node bench/hyperv/run.mjs [N...]
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const { HyperVProvider } = await import(join(root, 'packages/hyperv/dist/provider.js'));
const { createLab } = await import(join(root, 'packages/core/dist/flows/create.js'));
const { StateStore } = await import(join(root, 'packages/core/dist/state.js'));
const { discover } = await import(join(root, 'packages/discovery/dist/discover.js'));
const { writeSimulatedHost } = await import(join(root, 'packages/hyperv/dist/testing/sim-state.js'));
const { defaultHost } = await import(join(root, 'packages/hyperv/dist/testing/recorded-hosts.js'));
const { okFacts } = await import(join(root, 'packages/core/dist/testing/results.js'));
// ssh2 directly (default import: it is CommonJS), with the host key pinned to the test host's key.
const { default: ssh2 } = await import('ssh2');
function sshRunner(dir, port) {
  const hostKeys = ['ed25519', 'rsa'].map((type) => readFileSync(join(dir, 'h1', `ssh_host_${type}_key.pub`), 'utf8').split(' ')[1]);
  return new Promise((resolvePromise, reject) => {
    const client = new ssh2.Client();
    client
      .on('ready', () =>
        resolvePromise({
          exec: (command, options = {}) =>
            new Promise((ok, fail) =>
              client.exec(command, (err, stream) => {
                if (err) return fail(err);
                const out = [];
                const errOut = [];
                let code = null;
                stream.on('data', (d) => out.push(d));
                stream.stderr.on('data', (d) => errOut.push(d));
                stream.on('exit', (c) => {
                  code = c;
                });
                stream.on('close', () => ok({ stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(errOut).toString('utf8'), code }));
                stream.end(options.stdin ?? '');
              }),
            ),
          close: () => client.end(),
        }),
      )
      .on('error', reject)
      .connect({
        host: '127.0.0.1',
        port,
        username: 'labctl-np',
        privateKey: readFileSync(join(dir, 'client', 'id_ed25519')),
        hostVerifier: (key) => hostKeys.includes(key.toString('base64')),
      });
  });
}
const sizes = process.argv.slice(2).map(Number).filter(Boolean);
const counts = sizes.length ? sizes : [1, 10, 50];
const GiB = 1024 ** 3;
const GOLDEN = 'D:\\Golden\\centos7.vhdx';

const dir = mkdtempSync(join(tmpdir(), 'hyperv-bench-'));
const base = 22430;
const port = base + 1;
execFileSync(join(root, 'scripts/testbed/hyperv-hosts.sh'), ['up', dir, '1', String(base)], { stdio: 'pipe' });
const stateFile = (name) => join(dir, 'hv', String(port), name);
const reset = () => writeSimulatedHost(join(dir, 'hv', String(port)), defaultHost(), { freeMemoryBytes: 512 * GiB, volumes: [{ name: 'D:\\', freeBytes: 8192 * GiB }] });
const hostInvocations = () => readFileSync(stateFile('invocations.log'), 'utf8').split('\n').filter(Boolean).length;
const plan = (n) =>
  Array.from({ length: n }, (_, i) => ({
    name: `web-${String(i + 1).padStart(3, '0')}`,
    group: 'web',
    host: 'hv01',
    mac: '',
    cpus: 2,
    memoryMiB: 2048,
    golden: GOLDEN,
    clone: 'linked',
    network: 'LabSwitch',
    options: { firmware: 'uefi', generation: 2 },
    ssh: { user: 'root', port: 22 },
  }));
const provider = () =>
  new HyperVProvider({
    lab: 'bench',
    hosts: [{ name: 'hv01' }],
    connect: () => sshRunner(dir, port),
  });
const sink = () => {};

const rows = [];
const flowRows = [];
try {
  for (const n of counts) {
    reset();
    const batched = provider();
    let t = performance.now();
    const vms = plan(n);
    const { checks, placed } = await batched.preflight({ lab: 'bench', provider: 'hyperv', vms, concurrency: 10 });
    if (checks.some((c) => c.level === 'error')) throw new Error(JSON.stringify(checks));
    const records = okFacts(await batched.create(placed.vms, sink));
    okFacts(await batched.start(records, sink));
    const reports = await batched.adapters(records);
    const batchedMs = performance.now() - t;
    if (reports.filter((r) => r.addresses.length > 0).length !== n) throw new Error('not every VM reported an address');
    const batchedRuns = hostInvocations();
    await batched.close();

    reset();
    const perVm = provider();
    t = performance.now();
    const { placed: placedOne } = await perVm.preflight({ lab: 'bench', provider: 'hyperv', vms, concurrency: 1 });
    const one = [];
    for (const vm of placedOne.vms) one.push(...okFacts(await perVm.create([vm], sink)));
    for (const record of one) await perVm.start([record], sink);
    for (const record of one) await perVm.adapters([record]);
    const perVmMs = performance.now() - t;
    const perVmRuns = hostInvocations();
    await perVm.close();
    rows.push({ vms: n, batchedRuns, batchedMs: Math.round(batchedMs), perVmRuns, perVmMs: Math.round(perVmMs) });
  }
  // Through the flow: createLab (list, preflight, create, start in the provider's batches) + one
  // discovery round (get_adapters), for each N at --concurrency 1, 4 (the default) and 10.
  for (const [n, concurrency] of counts.flatMap((n) => [1, 4, 10].map((c) => [n, c]))) {
    reset();
    const hv = provider();
    const labDir = mkdtempSync(join(dir, 'lab-'));
    const t = performance.now();
    const summary = await createLab({
      plan: { lab: 'bench', provider: 'hyperv', vms: plan(n), concurrency },
      provider: hv,
      store: new StateStore(labDir),
      timeoutMs: 30_000,
      discover: (p, vms, options) => discover(p, vms, { ...options, ssh: false }),
    });
    const ms = performance.now() - t;
    await hv.close();
    const addressed = summary.vms.filter((vm) => vm.address).length;
    if (summary.counts.created !== n || addressed !== n) throw new Error(`flow: ${JSON.stringify(summary.counts)}, ${addressed} addressed`);
    const scripts = readFileSync(stateFile('invocations.log'), 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line).script);
    flowRows.push({ vms: n, concurrency, runs: scripts.length, scripts, ms: Math.round(ms) });
  }
} finally {
  execFileSync(join(root, 'scripts/testbed/hyperv-hosts.sh'), ['down', dir], { stdio: 'pipe' });
  rmSync(dir, { recursive: true, force: true });
}
console.log('| VMs | labctl: PowerShell runs | labctl: wall time | one run per VM and step | wall time |');
console.log('|---:|---:|---:|---:|---:|');
for (const r of rows) console.log(`| ${r.vms} | ${r.batchedRuns} | ${r.batchedMs} ms | ${r.perVmRuns} | ${r.perVmMs} ms |`);
console.log('');
console.log('| through labctl create: VMs | --concurrency | PowerShell runs | scripts | wall time |');
console.log('|---:|---:|---:|---|---:|');
for (const r of flowRows) {
  const counted = Object.entries(r.scripts.reduce((acc, name) => ({ ...acc, [name]: (acc[name] ?? 0) + 1 }), {})).map(([name, k]) => (k > 1 ? `${name} x${k}` : name));
  console.log(`| ${r.vms} | ${r.concurrency} | ${r.runs} | ${counted.join(', ')} | ${r.ms} ms |`);
}
