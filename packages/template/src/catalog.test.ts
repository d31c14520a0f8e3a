import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { hasCommand } from '@labctl/core/testing/testbed';
import { afterAll, describe, expect, it } from 'vitest';
import { builtinProfileNames, loadProfile, selectSteps } from './catalog.js';
import { renderStepsMarkdown } from './docs.js';
import { renderScript } from './script.js';

const dir = mkdtempSync(join(tmpdir(), 'labctl-template-catalog-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
function profileFile(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

describe('step catalog', () => {
  it('the CentOS 7 profile covers every step of the issue, in phase order, seal off by default', () => {
    const profile = loadProfile('centos7');
    expect(profile.steps.map((s) => s.id)).toEqual([
      'firstboot-seed',
      'network-file',
      'ifcfg-eth0',
      'ifcfg-hwaddr',
      'udev-persistent-net',
      'yum-clean',
      'yum-update',
      'firewall-ssh',
      'hyperv-daemons',
      'hyperv-services',
      'ssh-hostkeys',
      'machine-id',
      'dhcp-leases',
      'logfiles',
      'bash-history',
      'tmp-files',
      'random-seed',
      'package-cache',
      'seal',
    ]);
    expect(profile.steps.filter((s) => !s.default).map((s) => s.id)).toEqual(['seal']);
    expect(profile.distributions).toContain('centos:7');
  });

  it.each([
    [
      'a duplicate id',
      '  - {id: a, description: x, check: exit 0, apply: "true"}\n  - {id: a, description: y, check: exit 0, apply: "true"}',
      /:\d+: steps\[1\]: step id "a" appears twice/,
    ],
    ['an id outside [a-z0-9-]', '  - {id: Bad_Id, description: x, check: exit 0, apply: "true"}', /step id must match/],
    [
      'a description ending with a period',
      '  - {id: a, description: Does things., check: exit 0, apply: "true"}',
      /must not end with a period/,
    ],
    ['an empty description', '  - {id: a, description: "", check: exit 0, apply: "true"}', /needs a description/],
    ['a missing apply', '  - {id: a, description: x, check: exit 0}', /needs a non-empty apply/],
    [
      'an unknown phase',
      '  - {id: a, description: x, phase: later, check: exit 0, apply: "true"}',
      /phase must be one of/,
    ],
  ])('refuses a profile with %s, naming file and line', (_, steps, message) => {
    const file = profileFile('bad.yaml', `profile: bad\nsteps:\n${steps}\n`);
    expect(() => loadProfile(file)).toThrow(message);
    expect(() => loadProfile(file)).toThrow(expect.objectContaining({ code: 'TEMPLATE_CATALOG', exitCode: 2 }));
  });

  it('a user profile extends centos7: replaces a step field by field, turns one off, adds its own', () => {
    const file = profileFile(
      'mine.yaml',
      'profile: mine\nextends: [centos7]\nsteps:\n  - id: yum-update\n    default: false\n  - id: motd\n    description: Write a banner\n    check: grep -q lab /etc/motd\n    apply: echo lab > /etc/motd\n',
    );
    const mine = loadProfile(file);
    const update = mine.steps.find((s) => s.id === 'yum-update');
    expect(update).toMatchObject({ default: false, apply: 'yum -y update', source: file });
    expect(mine.steps.map((s) => s.id).indexOf('motd')).toBe(10); // last configure step, before generalize
    expect(selectSteps(mine).map((s) => s.id)).not.toContain('yum-update');
    expect(mine.distributions).toEqual(loadProfile('centos7').distributions);
  });

  it('selects steps: defaults, --step lists, all, --skip, --seal; unknown ids are bad input', () => {
    const profile = loadProfile('centos7');
    expect(selectSteps(profile).map((s) => s.id)).not.toContain('seal');
    expect(selectSteps(profile, { steps: ['firewall-ssh,machine-id'] }).map((s) => s.id)).toEqual([
      'firewall-ssh',
      'machine-id',
    ]);
    expect(selectSteps(profile, { skip: ['yum-update', 'yum-clean'] })).toHaveLength(profile.steps.length - 3);
    expect(selectSteps(profile, { seal: true }).at(-1)?.id).toBe('seal');
    expect(selectSteps(profile, { steps: ['all'] })).toHaveLength(profile.steps.length - 1);
    expect(() => selectSteps(profile, { skip: ['no-such-step'] })).toThrow(
      expect.objectContaining({ code: 'TEMPLATE_UNKNOWN_STEP', exitCode: 2 }),
    );
  });

  it('refuses an unknown profile name with the list of built-in ones', () => {
    expect(() => loadProfile('solaris')).toThrow(
      expect.objectContaining({ code: 'TEMPLATE_PROFILE_NOT_FOUND', hint: expect.stringContaining('centos7') }),
    );
  });
});

describe('docs/template-steps.md', () => {
  const docFile = fileURLToPath(new URL('../../../docs/template-steps.md', import.meta.url));
  it('is generated from the catalog and up to date (LABCTL_UPDATE_DOCS=1 rewrites it)', () => {
    const expected = renderStepsMarkdown();
    if (process.env.LABCTL_UPDATE_DOCS === '1') writeFileSync(docFile, expected);
    expect(readFileSync(docFile, 'utf8')).toBe(expected);
    for (const name of builtinProfileNames())
      for (const step of loadProfile(name).steps) expect(expected).toContain(`| \`${step.id}\` |`);
  });
});

describe('emitted bash script', () => {
  const shellcheck = hasCommand('shellcheck');
  if (!shellcheck && /^(1|true)$/i.test(process.env.CI ?? ''))
    throw new Error('CI must run the shellcheck test, but `shellcheck` is missing');
  for (const name of ['centos7', 'debian']) {
    it(`${name}: passes bash -n${shellcheck ? ' and shellcheck' : ' (shellcheck not installed: skipped)'}`, () => {
      const profile = loadProfile(name);
      const file = profileFile(`${name}.sh`, renderScript(profile, selectSteps(profile, { seal: true })));
      execFileSync('bash', ['-n', file]);
      if (shellcheck) {
        const result = spawnSync('shellcheck', ['-s', 'bash', file], { encoding: 'utf8' });
        expect(result.stdout).toBe('');
        expect(result.status).toBe(0);
      }
    });
  }
});
