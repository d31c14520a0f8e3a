import type { VarValue } from '@labctl/core/state';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Values that break naive quoting in one format or another; each must come back from ansible-inventory unchanged. */
export const TRICKY: Record<string, VarValue> = {
  spaces: '  two  spaces and trailing ',
  quotes: `it's "quoted" and 'single'`,
  hash: 'a # not a comment',
  equals: 'k=v=w',
  semicolon: 'a;b ; c',
  unicode: 'ünïcödé 日本語 🚀 Ωmega',
  jinja: '{{ not_a_variable }}',
  jinja_block: '{% if x %}y{% endif %} {# c #}',
  backslash: 'C:\\Users\\lab\\new',
  newline: 'line1\nline2\ttab',
  separators: 'u2028[\u2028] nel[\u0085] del[\u007f]',
  empty: '',
  looks_int: '0777',
  looks_float: '1e3',
  looks_bool: 'True',
  looks_yes: 'yes',
  looks_null: 'null',
  looks_none: 'None',
  tilde: '~',
  shellish: '$(rm -rf /) `x` | & > <',
  brackets: '[1, 2] {a: b}',
  colon_space: 'key: value',
  dash_start: '- item',
  integer: 42,
  negative: -7,
  float: 2.5,
  yes_bool: true,
  no_bool: false,
  nothing: null,
  list: ['a b', 1, { nested: "{{ x }} it's" }],
  dict: { 'key with space': 'v', n: [true, null] },
};

export function trickyLab(dir: string): { state: unknown; labFile: string } {
  return {
    state: {
      version: 1,
      lab: 'tricky-lab',
      vms: [
        {
          name: 'web-01',
          group: 'web-1',
          provider: 'manual',
          addresses: ['fe80::5', '169.254.9.9', '192.0.2.11'],
          ssh: {
            user: 'labctl np',
            port: 2201,
            hostKeys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl'],
          },
          vars: TRICKY,
        },
        { name: 'web-02', group: 'web-1', provider: 'manual', addresses: ['2001:db8::2'], ssh: { hostKeys: [] } },
        {
          name: 'db1',
          group: '1db',
          provider: 'manual',
          addresses: ['192.0.2.21'],
          ssh: { keyFile: join(dir, 'keys dir', 'id "x"') },
        },
        { name: 'lost', group: 'db', provider: 'manual', addresses: ['0.0.0.0', 'fe80::9'] },
      ],
    },
    labFile: [
      'lab: tricky-lab',
      'groups:',
      '  web-1:',
      '    vars: { http_port: 8080, motd: "welcome # to {{ lab }}" }',
      '    ssh: { keyFile: keys/web_ed25519 }',
      'inventory:',
      '  vars: { ntp: "pool.ntp.org ; fallback", note: "a=b" }',
      '  groups:',
      '    frontend:',
      '      children: [web-1]',
      '      vars: { tier: "front end" }',
      '    databases:',
      '      children: [1db]',
      '',
    ].join('\n'),
  };
}

export async function makeTrickyLab(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  const lab = trickyLab(dir);
  await mkdir(join(dir, '.labctl'));
  await writeFile(join(dir, '.labctl', 'state.json'), JSON.stringify(lab.state));
  await writeFile(join(dir, 'labctl.yaml'), lab.labFile);
  return dir;
}
