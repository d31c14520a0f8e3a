import { type CreateFlags, type PlannedLab, planLab } from '@labctl/core/flows/plan-lab';
import type { LoadedLabFile } from '@labctl/core/spec';
import type { StateStore } from '@labctl/core/state';
import { Flags } from '@oclif/core';
import { connectionFromEnv, DEFAULT_PROVIDER, definitionFor, macPrefixFor } from './providers.js';

/**
 * The flags that plan a lab, shared by every command that plans one (`create`, `hyperv scripts
 * --emit`), and the one function that turns them into a plan: the same flags plan the same VMs
 * wherever they are given.
 */
export const planFlags = {
  count: Flags.integer({
    char: 'n',
    summary: 'How many VMs the group should have (existing ones count).',
    min: 0,
    max: 10_000,
  }),
  group: Flags.string({ char: 'g', summary: 'Group to create (default: every group of labctl.yaml, or "vm").' }),
  'new-group': Flags.boolean({
    summary: 'Let --group name a group that neither labctl.yaml nor the lab has yet (a typo is refused otherwise).',
  }),
  name: Flags.string({ summary: 'Name pattern: {group}, {n}, {nn}, {nnn}. Default "{group}-{nn}".' }),
  golden: Flags.string({ summary: 'Golden disk (.vhd, .vhdx, .qcow2, raw); read in place, never written.' }),
  cpus: Flags.integer({ summary: 'Virtual CPUs per VM.', min: 1, max: 1024 }),
  memory: Flags.string({ summary: 'Memory per VM: MiB (512) or 512M, 2G.' }),
  network: Flags.string({
    summary: 'libvirt network name, or bridge:NAME for a host bridge; Hyper-V: the virtual switch.',
  }),
};

export type PlanFlagValues = {
  count?: number | undefined;
  group?: string | undefined;
  'new-group'?: boolean | undefined;
  name?: string | undefined;
  golden?: string | undefined;
  cpus?: number | undefined;
  memory?: string | undefined;
  network?: string | undefined;
};

/** Plan flags (and any other CreateFlags a command adds) -> the plan; the lab's state names the groups it already has. */
export async function planFromFlags(
  lab: LoadedLabFile,
  store: StateStore,
  flags: PlanFlagValues,
  extra: CreateFlags = {},
): Promise<PlannedLab> {
  const createFlags: CreateFlags = {
    ...(flags.count !== undefined ? { count: flags.count } : {}),
    ...(flags.group !== undefined ? { group: flags.group } : {}),
    ...(flags['new-group'] ? { newGroup: true } : {}),
    ...(flags.name !== undefined ? { name: flags.name } : {}),
    ...(flags.golden !== undefined ? { golden: flags.golden } : {}),
    ...(flags.cpus !== undefined ? { cpus: flags.cpus } : {}),
    ...(flags.memory !== undefined ? { memory: flags.memory } : {}),
    ...(flags.network !== undefined ? { network: flags.network } : {}),
    ...extra,
  };
  const provider = definitionFor(createFlags.provider ?? lab.spec.provider ?? DEFAULT_PROVIDER).name;
  // A provider's own environment variable (LIBVIRT_DEFAULT_URI) names its connection, never another provider's host,
  // and never one of a lab that lists its hosts.
  const fromEnv = connectionFromEnv(provider);
  if (createFlags.uri === undefined && !lab.spec.uri && !lab.spec.hosts?.length && fromEnv) createFlags.uri = fromEnv;
  const state = await store.read();
  const planned = planLab(
    lab,
    { provider, ...createFlags },
    {
      defaultProvider: DEFAULT_PROVIDER,
      macPrefix: macPrefixFor,
      knownGroups: [...new Set(state?.vms.map((vm) => vm.group) ?? [])],
    },
  );
  const pinsOneHost =
    createFlags.uri !== undefined && (lab.spec.hosts ?? []).some((host) => host.name === createFlags.uri);
  if (createFlags.uri !== undefined && !pinsOneHost) return planned;
  const plan = pinnedToRecordedHosts(lab, planned.plan, state?.vms ?? [], extra.replace);
  // The pin is in the plan; the provider still sees every host (see ProviderDefinition.pinsWithinHosts).
  return pinsOneHost && definitionFor(provider).pinsWithinHosts ? { plan, uri: undefined } : { ...planned, plan };
}

/** States of a VM that a re-run makes again: where it was placed is all the state knows of it. */
const UNFINISHED = new Set(['failed', 'creating', 'missing']);

/**
 * On a lab of several hosts, a VM the state records on one of them is planned there again (a VM
 * whose host failed is made there once the host is back), whatever host `--host` pins the run's new
 * VMs to; `--replace` lets placement choose again for the unfinished ones (failed, half-made, gone).
 */
function pinnedToRecordedHosts(
  lab: LoadedLabFile,
  plan: PlannedLab['plan'],
  recorded: ReadonlyArray<{ name: string; host: string; state: string }>,
  replace: boolean | undefined,
): PlannedLab['plan'] {
  const hosts = new Set((lab.spec.hosts ?? []).map((host) => host.name));
  if (hosts.size < 2) return plan;
  const byName = new Map(recorded.map((vm) => [vm.name, vm]));
  return {
    ...plan,
    vms: plan.vms.map((vm) => {
      const record = byName.get(vm.name);
      if (!record || !hosts.has(record.host) || (replace && UNFINISHED.has(record.state))) return vm;
      return { ...vm, host: record.host };
    }),
  };
}
