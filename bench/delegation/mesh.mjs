// 50-host full-mesh benchmark against the DC started by run.sh (env from scripts/testbed/samba-ad.sh's ad.env).
// Strategies, each from the same reset state on the same DC in the same run:
//   labctl apply (1 search + 1 modify per host), labctl re-run (no-op), labctl verify,
//   one write per pair (the seed's script: Set-ADObject -Add per pair + Set-ADAccountControl per pair),
//   `samba-tool delegation` loop (add-service per value + for-any-service/for-any-protocol per host), sampled.
// Every strategy starts from hosts with unconstrained delegation on (UAC 0x81000) and no values.
// Prints one JSON object.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { promisify } from 'node:util';
import { Attribute, Change, Client } from 'ldapts';
import { parseHostNames } from '../../packages/delegation/dist/mesh.js';
import { executeReport, verifyReport } from '../../packages/delegation/dist/service.js';

const env = process.env;
const N = Number(env.BENCH_HOSTS ?? 50);
const SAMBA_TOOL_HOSTS = Number(env.BENCH_SAMBA_TOOL_HOSTS ?? 1);
const MVSMS = 'Microsoft Virtual System Migration Service';
const hosts = Array.from({ length: N }, (_, i) => `HV${String(i + 1).padStart(2, '0')}`);
const dn = (h) => `CN=${h},CN=Computers,${env.LDAP_BASE_DN}`;
const change = (operation, type, values) => new Change({ operation, modification: new Attribute({ type, values }) });
const pairValues = (b) => [
  `${MVSMS}/${b.toLowerCase()}.${env.AD_DOMAIN}`,
  `${MVSMS}/${b}`,
  `cifs/${b.toLowerCase()}.${env.AD_DOMAIN}`,
  `cifs/${b}`,
];
const ms = (t0) => Math.round(performance.now() - t0);

const admin = new Client({ url: env.LDAP_URL, tlsOptions: { ca: [readFileSync(env.LDAP_CA)] }, timeout: 60_000 });
await admin.bind(env.LDAP_BIND_USER, env.LDAP_PASSWORD);

async function seed() {
  const t0 = performance.now();
  for (const h of hosts) {
    const fqdn = `${h.toLowerCase()}.${env.AD_DOMAIN}`;
    await admin.add(dn(h), {
      objectClass: ['top', 'person', 'organizationalPerson', 'user', 'computer'],
      cn: h,
      sAMAccountName: `${h}$`,
      userAccountControl: String(0x81000),
      dNSHostName: fqdn,
      servicePrincipalName: ['HOST', 'RestrictedKrbHost', MVSMS, 'Microsoft Virtual Console Service', 'WSMAN'].flatMap(
        (s) => [`${s}/${h}`, `${s}/${fqdn}`],
      ),
    });
  }
  return ms(t0);
}
async function reset() {
  for (const h of hosts)
    await admin.modify(dn(h), [
      change('replace', 'msDS-AllowedToDelegateTo', []),
      change('replace', 'userAccountControl', [String(0x81000)]),
    ]);
}
async function stored() {
  const { searchEntries } = await admin.search(env.LDAP_BASE_DN, {
    scope: 'sub',
    filter: '(&(objectClass=computer)(sAMAccountName=HV*))',
    attributes: ['sAMAccountName', 'msDS-AllowedToDelegateTo', 'userAccountControl'],
  });
  const list = (v) => (v === undefined ? [] : Array.isArray(v) ? v : [v]);
  let values = 0;
  let flagsOk = 0;
  const byHost = {};
  for (const e of searchEntries) {
    const vals = list(e['msDS-AllowedToDelegateTo']).map(String);
    values += vals.length;
    if (Number(e.userAccountControl) === 0x1001000) flagsOk++;
    byHost[String(e.sAMAccountName).replace(/\$$/, '')] = vals.map((v) => v.toLowerCase()).sort();
  }
  return { values, flagsOk, byHost };
}

const settings = {
  ...parseHostNames(hosts),
  domain: env.AD_DOMAIN,
  baseDn: env.LDAP_BASE_DN,
  services: [MVSMS, 'cifs'],
  ldapUrl: env.LDAP_URL,
  bindUser: env.LDAP_BIND_USER,
  caFile: env.LDAP_CA,
  passwordFile: undefined,
  insecure: false,
};
const connection = {
  url: env.LDAP_URL,
  bindUser: env.LDAP_BIND_USER,
  password: env.LDAP_PASSWORD,
  caFile: env.LDAP_CA,
};
const results = {
  hosts: N,
  pairs: N * (N - 1),
  values: N * (N - 1) * 4,
  loadAverageAtStart: loadavg().map((l) => l.toFixed(1)),
  seedMs: await seed(),
  strategies: [],
};

// 1. labctl
await reset();
let t0 = performance.now();
const applied = await executeReport(settings, connection, { kind: 'apply' });
const labctlMs = ms(t0);
const afterLabctl = await stored();
results.strategies.push({
  strategy: 'labctl delegation apply',
  ms: labctlMs,
  directoryOps: applied.operations.searches + applied.operations.modifies,
  operations: applied.operations,
  valuesStored: afterLabctl.values,
  hostsWithFlags: afterLabctl.flagsOk,
  connections: 1,
});
t0 = performance.now();
const rerun = await executeReport(settings, connection, { kind: 'apply' });
results.strategies.push({
  strategy: 'labctl delegation apply, re-run (converged)',
  ms: ms(t0),
  directoryOps: rerun.operations.searches + rerun.operations.modifies,
  operations: rerun.operations,
  changed: rerun.changed,
});
t0 = performance.now();
const verified = await verifyReport(settings, connection);
results.strategies.push({
  strategy: 'labctl delegation verify',
  ms: ms(t0),
  directoryOps: verified.operations.searches,
  ok: verified.ok,
});

// 2. the seed's approach: per ordered pair, one add of 4 values and one account-control write.
await reset();
t0 = performance.now();
let ops = 0;
for (const a of hosts) {
  for (const b of hosts) {
    if (a === b) continue;
    await admin.modify(dn(a), [change('add', 'msDS-AllowedToDelegateTo', pairValues(b))]);
    await admin.modify(dn(a), [change('replace', 'userAccountControl', [String(0x1001000)])]);
    ops += 2;
  }
}
const perPairMs = ms(t0);
const afterPairs = await stored();
let rerunError = null;
try {
  await admin.modify(dn(hosts[0]), [change('add', 'msDS-AllowedToDelegateTo', pairValues(hosts[1]))]);
} catch (error) {
  rerunError = `${error.constructor.name} ${error.code}`;
}
const sameAsLabctl = hosts.every((h) => JSON.stringify(afterPairs.byHost[h]) === JSON.stringify(afterLabctl.byHost[h]));
results.strategies.push({
  strategy: 'one write per pair (seed script: -Add + Set-ADAccountControl per pair)',
  ms: perPairMs,
  directoryOps: ops,
  valuesStored: afterPairs.values,
  hostsWithFlags: afterPairs.flagsOk,
  sameResultAsLabctl: sameAsLabctl,
  reRunFirstPair: rerunError,
  connections: 1,
});

// 3. samba-tool delegation loop, over LDAP to the same DC, sampled over SAMBA_TOOL_HOSTS source hosts.
await reset();
const run = promisify(execFile);
// The password goes through Samba's PASSWD variable, not argv.
const st = (args) =>
  run('samba-tool', ['delegation', ...args, '-H', 'ldap://127.0.0.1', '-U', 'Administrator'], {
    env: { ...process.env, PASSWD: env.LDAP_PASSWORD },
  });
const sample = hosts.slice(0, SAMBA_TOOL_HOSTS);
t0 = performance.now();
let calls = 0;
for (const a of sample) {
  await st(['for-any-service', `${a}$`, 'off']);
  await st(['for-any-protocol', `${a}$`, 'on']);
  calls += 2;
  for (const b of hosts) {
    if (a === b) continue;
    for (const value of pairValues(b)) {
      await st(['add-service', `${a}$`, value]);
      calls++;
    }
  }
}
const sambaToolMs = ms(t0);
const afterSambaTool = await stored();
const perHostMs = sambaToolMs / sample.length;
results.strategies.push({
  strategy: `samba-tool delegation loop (${sample.length} of ${N} hosts measured, total extrapolated)`,
  ms: Math.round(perHostMs * N),
  measuredMs: sambaToolMs,
  measuredHosts: sample.length,
  processes: calls,
  processesForAllHosts: (calls / sample.length) * N,
  sameResultAsLabctl: sample.every(
    (h) => JSON.stringify(afterSambaTool.byHost[h]) === JSON.stringify(afterLabctl.byHost[h]),
  ),
});

await reset();
await admin.unbind();
console.log(JSON.stringify(results, null, 2));
