import { type Check, failedChecks } from '../checks.js';
import { checkCaseCollisions } from '../names.js';
import type { Plan, Provider, VmPlan } from '../provider.js';
import { emptyState, type StateStore } from '../state.js';
import { PreflightError } from './create.js';

/**
 * `labctl create --dry-run`: every read-only check the real run makes (the provider's preflight in
 * its dry-run mode: connection, golden disks, networks or switches, free space, names, memory,
 * placement), then what the run would do per VM. Nothing is written, locked or started. Refused
 * exactly when the real run would be (exit 2), with the checks that refused it.
 */
export type DryRunAction = 'create' | 'keep';

export interface DryRunSummary {
  lab: string;
  provider: string;
  checks: Check[];
  /** The placed plan's VMs: `host` is where each would go. */
  vms: Array<VmPlan & { action: DryRunAction }>;
  /** The provider calls the run would make, one host each. */
  batches: string[][];
  /** VMs of the planned groups that the lab has beyond the declared count: left alone by create. */
  beyond: Array<{ name: string; group: string; state: string }>;
}

export async function dryRunLab(options: {
  plan: Plan;
  provider: Provider;
  store: StateStore;
}): Promise<DryRunSummary> {
  const { plan, provider } = options;
  const state = (await options.store.read()) ?? emptyState(plan.lab);
  checkCaseCollisions(
    'vm',
    new Set([...state.vms.map((vm) => vm.name), ...plan.vms.map((vm) => vm.name)]),
    `lab ${plan.lab}`,
  );
  const { checks, placed } = await provider.preflight(plan, { dryRun: true });
  const refused = failedChecks(checks);
  if (refused.length > 0) {
    throw new PreflightError(
      'PREFLIGHT_FAILED',
      `the real run would be refused: ${refused.map((check) => check.message).join('; ')}`,
      {
        hint: [...new Set(refused.map((check) => check.hint).filter(Boolean))].join(' ') || 'Nothing was changed.',
        details: { checks: refused },
        exitCode: 2,
      },
    );
  }
  // As the real run decides: a VM is kept when the hypervisor has it, made otherwise.
  const existing = new Set((await provider.list(plan.lab)).map((vm) => vm.name));
  const planned = new Set(plan.vms.map((vm) => vm.name));
  const groups = new Set(plan.vms.map((vm) => vm.group));
  return {
    lab: plan.lab,
    provider: provider.name,
    checks,
    vms: placed.vms.map((vm) => ({ ...vm, action: existing.has(vm.name) ? 'keep' : 'create' })),
    batches: placed.batches,
    beyond: state.vms
      .filter((vm) => groups.has(vm.group) && !planned.has(vm.name))
      .map((vm) => ({ name: vm.name, group: vm.group, state: vm.state })),
  };
}
