#!/usr/bin/env node
// Per-VM cost of a VM's identity: host key generation (ed25519, and ed25519 + RSA 3072), the three
// NoCloud documents (made and read back) and the ISO 9660 image, as `labctl create` makes them for
// each VM before it exists; and the Hyper-V form (the ISO inside a VHDX, gzip + base64).
//   node bench/seed/run.mjs [COUNT]     (after a build; default 100 VMs per variant)
// Prints a Markdown table for bench/RESULTS.md, with the machine's load average.
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { makeSeedWith } from '@labctl/seed/identity';
import { isoImage } from '@labctl/seed/iso9660';
import { SEED_LABEL } from '@labctl/seed/nocloud';
import { seedPayload } from '@labctl/hyperv/seed-disk';

const count = Number(process.argv[2] ?? 100);
const authorized = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl';
const vm = (i) => ({
  name: `web-${String(i).padStart(3, '0')}`,
  group: 'web',
  host: 'local',
  mac: `52:54:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`,
  cpus: 1,
  memoryMiB: 512,
  golden: '/g.vhd',
  clone: 'linked',
  network: 'labnet',
  options: {},
  ssh: { user: 'root', port: 22 },
  address: { address: `10.0.${i >> 8}.${(i & 255) || 1}`, prefix: 16, gateway: '10.0.0.1', assign: 'static' },
});

async function measure(label, perVm) {
  await perVm(vm(0)); // warm-up: module loading and JIT
  const start = performance.now();
  for (let i = 1; i <= count; i++) await perVm(vm(i));
  const ms = (performance.now() - start) / count;
  return `| ${label} | ${count} | ${ms.toFixed(2)} ms |`;
}

const before = loadavg()[0].toFixed(2);
const rows = [
  await measure('seed: ed25519 key, documents, ISO (libvirt)', async (v) => {
    const seed = await makeSeedWith(v, { authorizedKeys: [authorized] });
    isoImage(seed.files, SEED_LABEL);
  }),
  await measure('seed: ed25519 + RSA 3072 keys, documents, ISO', async (v) => {
    const seed = await makeSeedWith(v, { authorizedKeys: [authorized], hostKeyTypes: ['ed25519', 'rsa'] });
    isoImage(seed.files, SEED_LABEL);
  }),
  await measure('seed as Hyper-V gets it: ed25519, ISO in a VHDX, gzip + base64', async (v) => {
    await seedPayload(await makeSeedWith(v, { authorizedKeys: [authorized] }));
  }),
];
console.log(`Load average (1 min) before: ${before}, after: ${loadavg()[0].toFixed(2)}; rss ${Math.round(process.memoryUsage().rss / 2 ** 20)} MiB\n`);
console.log('| what, per VM | VMs | time per VM |\n|---|---:|---:|');
for (const row of rows) console.log(row);
