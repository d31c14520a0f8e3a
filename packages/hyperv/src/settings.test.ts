import { parseLabFile } from '@labctl/core/spec';
import { describe, expect, it } from 'vitest';
import { hyperVHosts, parseHyperVSettings } from './settings.js';

describe('hyperv: settings and hosts: from labctl.yaml', () => {
  const spec = parseLabFile(
    [
      'provider: hyperv',
      'hosts:',
      "  - { name: hv01, address: admin@hv01.lab.example, path: 'D:\\Labs', concurrency: 2 }",
      '  - { name: hv02, user: ops, port: 2222 }',
      'hyperv: { shell: pwsh, hostKeys: accept-new, knownHosts: keys/known_hosts }',
      '',
    ].join('\n'),
    'labctl.yaml',
  );

  it('turns hosts into SSH targets, keeping path and concurrency', () => {
    expect(hyperVHosts(spec)).toEqual([
      { name: 'hv01', target: 'admin@hv01.lab.example', path: 'D:\\Labs', concurrency: 2 },
      { name: 'hv02', target: 'ops@hv02:2222' },
    ]);
  });

  it('a host whose address is local is this machine (no SSH); so is the only host on Windows without hosts:', () => {
    const local = parseLabFile(
      [
        'provider: hyperv',
        'hosts:',
        "  - { name: hv01, address: local, user: admin, port: 22, path: 'D:\\Labs' }",
        '',
      ].join('\n'),
      'labctl.yaml',
    );
    expect(hyperVHosts(local)).toEqual([{ name: 'hv01', target: 'local', path: 'D:\\Labs' }]);
    const none = parseLabFile('provider: hyperv\n', 'labctl.yaml');
    expect(hyperVHosts(none, undefined, 'win32')).toEqual([{ name: 'local', target: 'local' }]);
    expect(hyperVHosts(none, undefined, 'linux')).toEqual([]);
    expect(hyperVHosts(none, 'local', 'linux')).toEqual([{ name: 'local', target: 'local' }]);
    expect(hyperVHosts(spec, undefined, 'win32').map((host) => host.target)).toEqual([
      'admin@hv01.lab.example',
      'ops@hv02:2222',
    ]);
  });

  it('one host: a name from hosts:, or an SSH target that is not in the file', () => {
    expect(hyperVHosts(spec, 'hv02').map((host) => host.name)).toEqual(['hv02']);
    expect(hyperVHosts(spec, 'root@hv09:22')).toEqual([{ name: 'hv09', target: 'root@hv09:22' }]);
  });

  it("a host's proxyJump goes with its SSH target", () => {
    const jumped = { hosts: [{ name: 'hv05', address: 'admin@hv05', proxyJump: 'ops@bastion:2222' }] } as never;
    expect(hyperVHosts(jumped, 'hv05')).toEqual([
      { name: 'hv05', target: 'admin@hv05', proxyJump: 'ops@bastion:2222' },
    ]);
  });

  it('hyperv: keys are checked; paths resolve against the lab directory', () => {
    expect(parseHyperVSettings(spec.hyperv, (path) => `/lab/${path}`)).toEqual({
      shell: 'pwsh',
      hostKeys: 'accept-new',
      knownHosts: '/lab/keys/known_hosts',
    });
    expect(() => parseHyperVSettings({ shel: 'pwsh' }, (path) => path)).toThrow('hyperv.shel: unknown key');
    expect(() => parseHyperVSettings({ hostKeys: 'yes' }, (path) => path)).toThrow('expected strict or accept-new');
  });
});
