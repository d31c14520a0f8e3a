import { win32 } from 'node:path';
import { powershellSyntaxProblems } from '@labctl/core/testing/powershell-syntax';
import {
  BOOTSTRAP,
  bootstrapCommandLine,
  bootstrapStdin,
  decodeBootstrapStdin,
  encodePowerShellCommand,
} from '@labctl/remote/powershell';
import { describe, expect, it } from 'vitest';
import { explainNoAddress } from '../discovery.js';
import { dryRunSteps, powershellBundle } from '../emit.js';
import { HyperVProvider } from '../provider.js';
import { labPlan, NASTY_VALUES, vmPlan } from '../testing/plans.js';
import { SCRIPT_NAMES, SCRIPTS } from './index.js';

const offline = () => Promise.reject(new Error('a dry run must not connect'));

describe('every Hyper-V script parses (tree-sitter-powershell, no ERROR or MISSING node)', () => {
  it.each(SCRIPT_NAMES)('%s', async (name) => {
    const script = SCRIPTS[name];
    expect(await powershellSyntaxProblems(script.text)).toEqual([]);
    // The contract: param block, strict errors, module-qualified Hyper-V cmdlets, one envelope.
    expect(script.text).toContain('param([string]$InputJson, [string]$InputPath)');
    expect(script.text).toContain("$ErrorActionPreference = 'Stop'");
    expect(script.text.match(/<<<LABCTL-JSON/g)).toHaveLength(1);
    const code = script.text
      .split('\n')
      .filter((line) => !line.trimStart().startsWith('#'))
      .join('\n');
    expect(code).not.toMatch(/(?<![\w-]\\)\b(Get|New|Set|Start|Stop|Remove|Import|Compare|Connect|Disconnect)-VM\w*\b/);
  });

  it('the encoded bootstrap parses', async () => {
    expect(await powershellSyntaxProblems(BOOTSTRAP)).toEqual([]);
  });

  it("sent whole as -EncodedCommand, every script would pass cmd.exe's 8191 characters; the bootstrap line stays far below", () => {
    for (const name of SCRIPT_NAMES)
      expect([name, encodePowerShellCommand(SCRIPTS[name].text).length > 8191]).toEqual([name, true]);
    expect(bootstrapCommandLine().length).toBeLessThan(1500);
  });

  it('the check has teeth: a value spliced into code is caught', async () => {
    const spliced = SCRIPTS.list_vms.text.replace('[string]$In.lab', `'${"'); Remove-VM * -Force; ('"}' + " {"`);
    expect((await powershellSyntaxProblems(spliced)).length).toBeGreaterThan(0);
  });
});

describe('nasty names, paths and switches stay data', () => {
  it.each(NASTY_VALUES.map((value) => [JSON.stringify(value).slice(0, 40), value]))('%s', async (_label, nasty) => {
    const plan = labPlan('lab-nasty', [
      vmPlan(nasty, {
        group: nasty,
        network: nasty,
        golden: `D:\\Golden\\${nasty}.vhdx`,
        host: nasty,
        options: { vlan: 12 },
      }),
      vmPlan(`${nasty}-2`, {
        clone: 'full',
        options: { secureBoot: 'off', generation: 1, firmware: 'bios' },
        host: 'hv02',
      }),
    ]);
    const provider = new HyperVProvider({
      lab: plan.lab,
      hosts: [{ name: nasty, path: `E:\\${nasty}` }, { name: 'hv02' }],
      connect: offline,
    });
    const files = powershellBundle(dryRunSteps(provider, plan, [nasty, 'hv02']));
    for (const file of files.filter((item) => item.file.endsWith('.ps1'))) {
      expect([file.file, await powershellSyntaxProblems(file.content)]).toEqual([file.file, []]);
      // Scripts are fixed text: no input ever changes them.
      if (file.file.startsWith('scripts/'))
        expect(Object.values(SCRIPTS).map((script) => script.text)).toContain(file.content);
      else expect(file.content).not.toContain(nasty);
    }
    const inputs = files.filter((item) => item.file.endsWith('.json')).map((item) => JSON.parse(item.content));
    const create = inputs.find((input) => input.vms?.[0]?.diskFile);
    expect(create.vms[0]).toMatchObject({
      name: nasty,
      group: nasty,
      switch: nasty,
      golden: `D:\\Golden\\${nasty}.vhdx`,
      vlan: 12,
    });
    expect(create.diskDir).toBe(win32.join(`E:\\${nasty}`, 'lab-nasty'));
    // What goes over the wire decodes back to the same JSON.
    const wire = decodeBootstrapStdin(bootstrapStdin(SCRIPTS.create_vms.text, JSON.stringify(create)));
    expect(JSON.parse(wire.inputJson)).toEqual(create);
  });

  it.each(NASTY_VALUES)(
    'the KVP hint (Get-VMIntegrationService | … | Enable-VMIntegrationService) quotes %j as one literal',
    async (nasty) => {
      const hint = explainNoAddress(
        { name: nasty, state: 'Running', kvpEnabled: false, adapters: [] },
        {
          name: 'Network Adapter',
          macAddress: '00155D000101',
          ipAddresses: [],
          switchName: 'LabSwitch',
          status: ['Ok'],
        },
        'hv01',
      );
      const command = hint.slice(hint.indexOf('Get-VMIntegrationService'));
      expect(await powershellSyntaxProblems(command)).toEqual([]);
      expect(command).toContain(`-VMName '${nasty.replace(/'/g, "''")}' | Where-Object`);
      expect(command).toMatch(/\| Enable-VMIntegrationService$/);
    },
  );
});
