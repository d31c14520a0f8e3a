import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { powershellSyntaxProblems } from '@labctl/core/testing/powershell-syntax';
import { SCRIPTS } from '@labctl/hyperv/scripts/index';
import { afterAll, describe, expect, it } from 'vitest';
import Create, { type CreateResult } from '../create.js';
import HyperVScripts, { type HyperVScriptsResult } from './scripts.js';

const cliRoot = resolve(import.meta.dirname, '../../..');

const made: string[] = [];
afterAll(() => Promise.all(made.map((dir) => rm(dir, { recursive: true, force: true }))));

async function labDir(yaml: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'labctl-hyperv-cli-'));
  made.push(dir);
  await writeFile(join(dir, 'labctl.yaml'), yaml);
  return dir;
}

/** A Hyper-V lab on two hosts that are never contacted (.invalid). */
function twoHostLab(network: string, extra: string[] = []): string {
  return [
    'lab: review',
    'provider: hyperv',
    'defaults:',
    "  golden: 'D:\\Golden\\centos7.vhdx'",
    `  network: ${network}`,
    ...extra,
    'hosts:',
    '  - { name: hv01, address: admin@hv01.invalid }',
    '  - { name: hv02, address: admin@hv02.invalid }',
    '',
  ].join('\n');
}

describe('labctl hyperv scripts', () => {
  it('lists every script with what it does', async () => {
    const result = (await HyperVScripts.run(
      ['--json', '--lab-dir', await labDir('lab: x\n')],
      cliRoot,
    )) as HyperVScriptsResult;
    expect(result.scripts.map((script) => script.name)).toEqual(Object.keys(SCRIPTS));
    expect(result.emitted).toBeUndefined();
  });

  it('--emit writes the exact scripts, one JSON input per run and a runner per host, offline', async () => {
    const nasty = `we'b $(x) \`n ; # Ü`;
    const dir = await labDir(twoHostLab(JSON.stringify(nasty), ['groups:', '  web: { count: 3 }']));
    const out = join(dir, 'review');
    const result = (await HyperVScripts.run(
      ['--emit', out, '--count', '5', '--lab-dir', dir, '--json'],
      cliRoot,
    )) as HyperVScriptsResult;
    expect(result.emitted?.vms).toBe(5);
    const files = (await readdir(out, { recursive: true })).map(String).sort();
    expect(files).toEqual([
      '.labctl-emitted',
      '01-hv01-get_host_facts.json',
      '02-hv02-get_host_facts.json',
      '03-hv01-create_vms.json',
      '04-hv02-create_vms.json',
      '05-hv01-start_vms.json',
      '06-hv01-get_adapters.json',
      '07-hv02-start_vms.json',
      '08-hv02-get_adapters.json',
      'README.txt',
      'run-hv01.ps1',
      'run-hv02.ps1',
      'scripts',
      'scripts/create_vms.ps1',
      'scripts/get_adapters.ps1',
      'scripts/get_host_facts.ps1',
      'scripts/start_vms.ps1',
    ]);
    for (const file of files.filter((name) => name.endsWith('.ps1'))) {
      const text = await readFile(join(out, file), 'utf8');
      expect([file, await powershellSyntaxProblems(text)]).toEqual([file, []]);
    }
    expect(await readFile(join(out, 'scripts/create_vms.ps1'), 'utf8')).toBe(SCRIPTS.create_vms.text);
    const create = JSON.parse(await readFile(join(out, '03-hv01-create_vms.json'), 'utf8'));
    // The golden path stays the host's Windows path; round-robin placement offline.
    expect(
      create.vms.map((vm: { name: string; golden: string; switch: string }) => [vm.name, vm.golden, vm.switch]),
    ).toEqual([
      ['web-01', 'D:\\Golden\\centos7.vhdx', nasty],
      ['web-03', 'D:\\Golden\\centos7.vhdx', nasty],
      ['web-05', 'D:\\Golden\\centos7.vhdx', nasty],
    ]);
  });

  it('labctl create --dry-run --emit-powershell writes the same bundle for the one host --host names, and state stays untouched', async () => {
    const dir = await labDir(twoHostLab('LabSwitch'));
    const out = join(dir, 'review');
    const result = (await Create.run(
      ['--dry-run', '--emit-powershell', out, '--host', 'hv02', '--count', '2', '--lab-dir', dir, '--json'],
      cliRoot,
    )) as CreateResult;
    expect(result.dryRun).toBe(true);
    const files = (await readdir(out)).map(String).sort();
    expect(files).toEqual([
      '.labctl-emitted',
      '01-hv02-get_host_facts.json',
      '02-hv02-create_vms.json',
      '03-hv02-start_vms.json',
      '04-hv02-get_adapters.json',
      'README.txt',
      'run-hv02.ps1',
      'scripts',
    ]);
    const create = JSON.parse(await readFile(join(out, '02-hv02-create_vms.json'), 'utf8'));
    expect(create.vms.map((vm: { name: string; golden: string }) => [vm.name, vm.golden])).toEqual([
      ['vm-01', 'D:\\Golden\\centos7.vhdx'],
      ['vm-02', 'D:\\Golden\\centos7.vhdx'],
    ]);
    expect((await readdir(dir)).sort()).toEqual(['labctl.yaml', 'review']);
  });
});
