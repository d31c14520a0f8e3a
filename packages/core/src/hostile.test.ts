import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LabctlError } from './errors.js';
import { emitFiles, readRegularFile, writeFileKeeping } from './files.js';
import { createLab } from './flows/create.js';
import { planLab } from './flows/plan-lab.js';
import { checkCaseCollisions, type NameKind, nameProblem, pathInside } from './names.js';
import { LIMITS, type LoadedLabFile, parseLabFile } from './spec.js';
import { parseState, StateStore } from './state.js';
import { FakeProvider } from './testing/fake-provider.js';
import { fingerprintTree, hostileNames, injectionValues, leftoverTemporaries } from './testing/hostile.js';

/**
 * The library side of the safety suite (issue "nothing outside the lab is ever touched"): every
 * hostile name at every place a name enters, hostile state, bounded input and impossible numbers.
 * The binary side (exit statuses, files outside the lab) is in test/hostile/.
 */
const KINDS: NameKind[] = ['lab', 'group', 'vm', 'host', 'snapshot'];

function refusal(fn: () => unknown, label = ''): LabctlError {
  try {
    fn();
  } catch (err) {
    if (err instanceof LabctlError) return err;
    throw new Error(`not a labctl error (would be INTERNAL): ${(err as Error)?.stack ?? err}`);
  }
  throw new Error(`not refused: ${JSON.stringify(label)}`);
}

function lab(text: string): LoadedLabFile {
  const spec = parseLabFile(`provider: fake\n${text}`, 'labctl.yaml');
  return { path: 'labctl.yaml', spec, lab: spec.lab ?? 'lab', resolvePath: (value) => join('/labs/x', value) };
}

describe('names: one rule per kind, wherever a name enters', () => {
  const names = hostileNames();

  it(`refuses every one of ${names.length} hostile names for every kind, and accepts ordinary ones`, () => {
    for (const kind of KINDS) {
      for (const name of names) expect([kind, name, nameProblem(kind, name) !== undefined]).toEqual([kind, name, true]);
      for (const good of ['web', 'web-01', 'db_2', 'k8s.node-1', 'A1'])
        expect([kind, good, nameProblem(kind, good)]).toEqual([kind, good, undefined]);
    }
  });

  it('refuses each as --group, as a lab-file group, as lab name, as a host name and through a name pattern: exit 2, the name escaped in the message', () => {
    for (const name of names) {
      const asFlag = refusal(() => planLab(lab('defaults: { golden: g.vhd }'), { group: name, count: 1 }), name);
      expect([name, asFlag.exitCode]).toEqual([name, 2]);
      expect(asFlag.message).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/);
      for (const text of [
        `defaults: { golden: g.vhd }\ngroups:\n  ${JSON.stringify(name)}: { count: 1 }`,
        `lab: ${JSON.stringify(name)}`,
        `hosts:\n  - { name: ${JSON.stringify(name)} }`,
      ]) {
        const error = refusal(() => parseLabFile(text, 'labctl.yaml'), text);
        expect([name, text.split('\n')[0], error.exitCode]).toEqual([name, text.split('\n')[0], 2]);
      }
      // A pattern around the number placeholder: whatever the group, the VM names must pass the rule.
      const pattern = `${name}{nn}`;
      const viaPattern = (() => {
        try {
          return planLab(lab('defaults: { golden: g.vhd }'), { group: 'web', count: 1, name: pattern, newGroup: true });
        } catch (err) {
          if (err instanceof LabctlError) return err;
          throw err;
        }
      })();
      if (!(viaPattern instanceof LabctlError)) expect(nameProblem('vm', viaPattern.plan.vms[0]!.name)).toBeUndefined();
      else expect(viaPattern.exitCode).toBe(2);
    }
  });

  it('refuses names that differ only in case (Hyper-V and NTFS see one name): groups, hosts, planned VMs', () => {
    expect(refusal(() => parseLabFile('groups:\n  Web: { count: 1 }\n  web: { count: 1 }', 'labctl.yaml')).code).toBe(
      'NAME_CASE_CLASH',
    );
    expect(refusal(() => parseLabFile('hosts:\n  - { name: HV01 }\n  - { name: hv01 }', 'labctl.yaml')).code).toBe(
      'NAME_CASE_CLASH',
    );
    expect(refusal(() => parseLabFile('hosts:\n  - { name: hv01 }\n  - { name: hv01 }', 'labctl.yaml')).code).toBe(
      'NAME_DUPLICATE',
    );
    expect(refusal(() => checkCaseCollisions('vm', ['web-01', 'WEB-01'], 'plan')).exitCode).toBe(2);
    const twoPatterns = lab(
      'defaults: { golden: g.vhd }\ngroups:\n  a: { count: 1, name: "Node{n}" }\n  b: { count: 1, name: "node{n}" }',
    );
    expect(refusal(() => planLab(twoPatterns, {})).code).toBe('NAME_CASE_CLASH');
  });

  it('refuses a planned VM whose name differs only in case from one the lab already has, before the hypervisor is asked', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'labctl-case-'));
    await mkdir(join(dir, '.labctl'));
    await writeFile(join(dir, '.labctl', 'state.json'), state([vm({ name: 'Web-01' })]));
    const provider = new FakeProvider();
    const { plan } = planLab(lab('defaults: { golden: g.vhd }'), { group: 'web', count: 1, newGroup: true });
    await expect(createLab({ plan, provider, store: new StateStore(dir), timeoutMs: 1000 })).rejects.toMatchObject({
      code: 'NAME_CASE_CLASH',
      exitCode: 2,
    });
    expect([provider.preflight_Called, provider.create_Called, provider.list_Called]).toEqual([0, 0, 0]);
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps every derived path inside its directory', () => {
    for (const name of names) {
      try {
        const path = pathInside('/labs/x/.labctl/disks', `${name}.qcow2`);
        expect(path.startsWith('/labs/x/.labctl/disks/')).toBe(true);
      } catch (err) {
        expect((err as LabctlError).code).toBe('PATH_OUTSIDE');
      }
    }
  });
});

function state(vms: unknown[], labName: unknown = 'demo'): string {
  return JSON.stringify({ version: 1, lab: labName, vms });
}
const vm = (fields: Record<string, unknown>) => ({ name: 'web-01', group: 'web', provider: 'libvirt', ...fields });

describe('state is untrusted input', () => {
  it('refuses hostile names, hostile one-line fields and impossible shapes with exit 2, never INTERNAL', () => {
    const cases: string[] = [];
    for (const name of hostileNames()) {
      cases.push(state([vm({ name })]), state([vm({ group: name })]), state([], name));
    }
    for (const value of injectionValues()) {
      for (const field of ['host', 'mac', 'createdAt']) cases.push(state([vm({ [field]: value })]));
      cases.push(state([vm({ addresses: [value] })]));
      // One-line fields refuse line breaks and escapes; the rest of such a value is data for the emitters.
      if (/[\n\r\u001b\u2028]/.test(value))
        cases.push(state([vm({ ssh: { hostKeys: [value] } })]), state([vm({ ssh: { user: value } })]));
    }
    cases.push(
      state([vm({ addresses: Array.from({ length: 1000 }, () => '192.0.2.1') })]),
      state([vm({ error: 'x'.repeat(100_000) })]),
      state([vm({ provider: 'libvirt; rm -rf /' })]),
      state([vm({}), vm({ name: 'WEB-01' })]),
      state([vm({ vars: { deep: '@DEEP@' } })]).replace('"@DEEP@"', `${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}`),
      `${'['.repeat(100_000)}${']'.repeat(100_000)}`,
      'null',
      '[]',
      '{"version":1,"lab":"demo","vms":{}}',
    );
    for (const text of cases) {
      const error = refusal(() => parseState(text, 'state.json'), text.slice(0, 200));
      expect([text.slice(0, 60), error.exitCode]).toEqual([text.slice(0, 60), 2]);
    }
  });

  it('keeps values with line breaks where state allows them (vars, error text) as data', () => {
    for (const value of injectionValues()) {
      const parsed = parseState(state([vm({ vars: { ansible_host: value, note: value } })]), 'state.json');
      expect(parsed.vms[0]?.vars?.ansible_host).toBe(value);
    }
  });
});

describe('bounded input and numbers that cannot work', () => {
  it('refuses YAML alias bombs and deep nesting as lab-file errors (exit 2), not INTERNAL', () => {
    const bomb = [
      'a: &a ["x","x","x","x","x","x","x","x","x"]',
      ...'bcdefghi'.split('').map((k, i) => `${k}: &${k} [${Array(9).fill(`*${'abcdefghi'[i]}`).join(',')}]`),
    ].join('\n');
    const deep = `${'['.repeat(5000)}${']'.repeat(5000)}`;
    const deepMap = Array.from({ length: 200 }, (_, i) => `${'  '.repeat(i)}k${i}:`).join('\n');
    for (const text of [bomb, deep, deepMap, `lab: demo\n${'x'.repeat(10)}: [${'[1,'.repeat(40)}${']'.repeat(40)}]`]) {
      const error = refusal(() => parseLabFile(text, 'labctl.yaml'));
      expect([text.slice(0, 30), error.exitCode]).toEqual([text.slice(0, 30), 2]);
    }
  });

  it('finds a repeated key among 40,000 in linear time (10x the keys costs far less than 100x the time)', () => {
    const file = (n: number) =>
      `inventory:\n  vars:\n${Array.from({ length: n }, (_, i) => `    k${i}: ${i}`).join('\n')}\n    k0: again\n`;
    const time = (n: number) => {
      const started = performance.now();
      expect(refusal(() => parseLabFile(file(n), 'labctl.yaml')).message).toMatch(/k0.*appears twice/);
      return performance.now() - started;
    };
    time(4000);
    const small = Math.min(time(4000), time(4000));
    const large = Math.min(time(40_000), time(40_000));
    // Linear is ~10x; yaml's own quadratic check was ~100x (33 s for 40,000 keys).
    expect(large / small).toBeLessThan(40);
  });

  it('refuses impossible numbers in the lab file with the limit named', () => {
    const bad: Array<[string, RegExp]> = [
      ['memory: 1e300', /maximum/],
      ['memory: 16', /minimum of 32 MiB/],
      ['memory: "1.5K"', /whole number of MiB/],
      ['memory: 0', /minimum/],
      ['memory: -5', /minimum/],
      ['memory: "99999999999G"', /maximum/],
      ['memory: 100.5', /whole number/],
      ['cpus: 5000', /1024/],
      ['cpus: 0', /1/],
      ['cpus: 1.5', /int/i],
    ];
    for (const [line, message] of bad) {
      const error = refusal(() => parseLabFile(`defaults:\n  ${line}`, 'labctl.yaml'));
      expect([line, error.exitCode]).toEqual([line, 2]);
      expect([line, error.message]).toEqual([line, expect.stringMatching(message)]);
    }
    for (const line of [
      'timeout: 0.5',
      'timeout: 0',
      `timeout: ${LIMITS.timeoutMaxSeconds + 1}`,
      'concurrency: 1000',
      'groups: { web: { count: 20000000 } }',
    ]) {
      expect([line, refusal(() => parseLabFile(line, 'labctl.yaml')).exitCode]).toEqual([line, 2]);
    }
  });

  it('refuses impossible numbers from flags with the limit named, before planning anything', () => {
    const base = lab('defaults: { golden: g.vhd }');
    const bad = [
      { count: 20_000_000 },
      { count: -1 },
      { cpus: 100_000 },
      { concurrency: 0 },
      { memory: '1e300' },
      { memory: '0' },
      { memory: '8' },
      { memory: '1.5K' },
      { memory: '9999999T' },
    ];
    for (const flags of bad) {
      const error = refusal(() => planLab(base, { group: 'web', newGroup: true, ...flags }));
      expect([flags, error.exitCode]).toEqual([flags, 2]);
    }
    expect(planLab(base, { group: 'web', newGroup: true, count: 2, memory: '1.5G' }).plan.vms[0]?.memoryMiB).toBe(1536);
  });
});

const hasMkfifo = (() => {
  try {
    execFileSync('mkfifo', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

describe('files: special files refused, writes keep what the file was', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'labctl-files-'));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it.skipIf(!hasMkfifo)(
    'reads no FIFO, device, socket or directory: refused at once with what it is (exit 2)',
    async () => {
      const fifo = join(root, 'fifo');
      execFileSync('mkfifo', [fifo]);
      for (const [path, kind] of [
        [fifo, 'FIFO'],
        ['/dev/zero', 'character device'],
        [root, 'directory'],
      ] as const) {
        const error = await readRegularFile(path, 'lab file', { maxBytes: 1024 }).catch((e: unknown) => e);
        expect(error).toMatchObject({ exitCode: 2, message: expect.stringContaining(kind) });
      }
      await writeFile(join(root, 'big'), Buffer.alloc(2048));
      await expect(readRegularFile(join(root, 'big'), 'lab file', { maxBytes: 1024 })).rejects.toMatchObject({
        exitCode: 2,
      });
    },
  );

  it('keeps mode and owner, writes through a symlink, refuses special files and dangling links', async () => {
    const file = join(root, 'inv.ini');
    await writeFile(file, 'old\n', { mode: 0o600 });
    await writeFileKeeping(file, 'new\n', 0o644);
    expect(execFileSync('stat', ['-c', '%a %F', file]).toString().trim()).toBe('600 regular file');
    const target = join(root, 'real.ini');
    await writeFile(target, 'old\n', { mode: 0o640 });
    const link = join(root, 'link.ini');
    await symlink(target, link);
    await writeFileKeeping(link, 'through\n', 0o644);
    expect(execFileSync('stat', ['-c', '%a %F', link]).toString().trim()).toBe('777 symbolic link');
    expect(execFileSync('cat', [target]).toString()).toBe('through\n');
    expect(execFileSync('stat', ['-c', '%a', target]).toString().trim()).toBe('640');
    await symlink(join(root, 'nowhere'), join(root, 'dangling'));
    for (const path of ['/dev/null', root, join(root, 'dangling'), '/proc/self/status']) {
      await expect(writeFileKeeping(path, 'x', 0o644)).rejects.toMatchObject({ exitCode: 2 });
    }
    expect(await leftoverTemporaries(root)).toEqual([]);
  });

  it('emits only into a new, empty or labctl-owned directory; never through links, over foreign files, onto /proc, or two names Windows sees as one', async () => {
    const files = [
      { file: 'run-hv01.ps1', content: 'a' },
      { file: 'scripts/x.ps1', content: 'b' },
    ];
    const fresh = join(root, 'emit');
    await emitFiles(fresh, files);
    await emitFiles(fresh, files); // labctl's own directory: again is fine
    const foreign = join(root, 'foreign');
    await mkdir(foreign);
    await writeFile(join(foreign, 'notes.txt'), 'mine');
    const before = await fingerprintTree(root);
    await writeFile(join(fresh, 'scripts', 'x.ps1.user'), 'user');
    await mkdir(join(root, 'linked-target'));
    await symlink(join(root, 'linked-target'), join(root, 'linked'));
    const refusals = [
      () => emitFiles(foreign, files),
      () => emitFiles(join(root, 'linked'), files),
      () => emitFiles('/proc/self', files),
      () => emitFiles('/proc/self/new-dir', files),
      () => emitFiles(join(root, 'emit', 'run-hv01.ps1'), files),
      () =>
        emitFiles(join(root, 'emit2'), [
          { file: 'run-HV01.ps1', content: '' },
          { file: 'run-hv01.ps1', content: '' },
        ]),
      () => emitFiles(fresh, [...files, { file: 'scripts/x.ps1.user', content: 'over' }]),
    ];
    for (const attempt of refusals) await expect(attempt()).rejects.toMatchObject({ exitCode: 2 });
    const after = await fingerprintTree(root);
    expect(after.foreign).toEqual(before.foreign);
    expect(after['foreign/notes.txt']).toEqual(before['foreign/notes.txt']);
    expect(after['emit/scripts/x.ps1.user']).toBeDefined();
    expect(Object.keys(after).filter((key) => key.startsWith('linked-target/'))).toEqual([]);
  });
});
