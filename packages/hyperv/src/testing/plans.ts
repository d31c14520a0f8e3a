import type { Plan, VmPlan } from '@labctl/core/provider';

/** Plans for tests and benchmarks (test-only). */
export const NASTY_VALUES = [
  `it's`,
  `"double" 'single' ''`,
  '$(Remove-Item -Recurse C:\\)',
  '${env:PATH}',
  '`backtick`n`"',
  'a; Stop-Computer -Force',
  '# not a comment',
  'line\nbreak\r\nCRLF',
  'Ünïcødé Ωμέγα 日本語 😀',
  '@{a=1}; @(1,2)',
  "'); Remove-VM * -Force; ('",
  '"); exit 1; ("',
  '<#  block comment',
  '| Out-Null &',
  '\\\\server\\share\\$x',
];

export function vmPlan(name: string, overrides: Partial<VmPlan> = {}): VmPlan {
  return {
    name,
    group: 'web',
    host: 'auto',
    mac: '',
    cpus: 2,
    memoryMiB: 2048,
    golden: 'D:\\Golden\\centos7.vhdx',
    clone: 'linked',
    network: 'LabSwitch',
    ssh: { user: 'root', port: 22 },
    ...overrides,
    options: { firmware: 'uefi', generation: 2, ...overrides.options },
  };
}

export function labPlan(lab: string, vms: VmPlan[]): Plan {
  return { lab, provider: 'hyperv', vms, concurrency: 10 };
}

export function numbered(prefix: string, count: number, overrides: Partial<VmPlan> = {}): VmPlan[] {
  return Array.from({ length: count }, (_, index) =>
    vmPlan(`${prefix}-${String(index + 1).padStart(2, '0')}`, overrides),
  );
}
