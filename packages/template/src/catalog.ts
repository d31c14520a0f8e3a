import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UsageError } from '@labctl/core/errors';
import { fileKind } from '@labctl/core/files';
import { isMap, isSeq, LineCounter, parseDocument } from 'yaml';

/**
 * The step catalog: profiles of prep steps kept as data (templates/<profile>.yaml). A profile can
 * `extend` others; its own steps replace a base step with the same id (field by field) or are added.
 * Steps run in phase order (configure, generalize, seal), catalog order within a phase. The catalog
 * is validated when loaded, like virt-sysprep's `bake`/`check`: a malformed step cannot ship.
 */
export const PHASES = ['configure', 'generalize', 'seal'] as const;
export type Phase = (typeof PHASES)[number];

export interface Step {
  id: string;
  /** One line, no trailing period. */
  description: string;
  notes?: string;
  phase: Phase;
  /** On unless deselected; an off step runs only when named (--step, or --seal for `seal`). */
  default: boolean;
  /** Shell (bash). Exit 0: already done. Exit 1: needs apply. Anything else: the check failed. */
  check: string;
  /** Shell (bash) run with `set -e`; must leave the check passing. */
  apply: string;
  /** Re-run the check after the apply (default). Off for steps like seal whose apply ends the machine's run. */
  verify: boolean;
  /** The profile file the step's final definition comes from. */
  source: string;
}

export interface Profile {
  name: string;
  description: string;
  /** `id:version` from /etc/os-release (`centos:7`, `ubuntu:*`); empty for a fragment such as generalize. */
  distributions: string[];
  /** Shell functions every check and apply may use (set_kv, has_kv, drop_key). */
  prelude: string;
  steps: Step[];
  files: string[];
}

export const BUILTIN_PROFILE_DIR = fileURLToPath(new URL('../../../templates', import.meta.url));
const ID_PATTERN = /^[a-z0-9-]+$/;

/** Helpers for key=value config files (ifcfg, sysconfig), shared by every profile. */
export const PRELUDE = `# KEY=VALUE exactly once in a shell-style config file.
has_kv() {
  [ -f "$1" ] || return 1
  grep -qx "$2=$3" "$1" || return 1
  ! grep "^$2=" "$1" | grep -vqx "$2=$3"
}
set_kv() {
  touch "$1"
  if grep -q "^$2=" "$1"; then sed -i "s|^$2=.*|$2=$3|" "$1"; else printf '%s=%s\\n' "$2" "$3" >> "$1"; fi
}
drop_key() {
  if [ -f "$1" ]; then sed -i "/^$2=/d" "$1"; fi
}`;

export class CatalogError extends UsageError {}

export function builtinProfileNames(): string[] {
  return ['centos7', 'debian', 'firstboot-seed', 'generalize'];
}

function profilePath(nameOrFile: string, relativeTo: string): string {
  if (nameOrFile.includes('/') || nameOrFile.endsWith('.yaml') || nameOrFile.endsWith('.yml')) {
    return isAbsolute(nameOrFile) ? nameOrFile : resolve(relativeTo, nameOrFile);
  }
  return join(BUILTIN_PROFILE_DIR, `${nameOrFile}.yaml`);
}

interface RawStep {
  id?: unknown;
  description?: unknown;
  notes?: unknown;
  phase?: unknown;
  default?: unknown;
  check?: unknown;
  apply?: unknown;
  verify?: unknown;
}

function fail(file: string, where: string, message: string): never {
  throw new CatalogError('TEMPLATE_CATALOG', `${file}${where}: ${message}`, {
    hint: 'Each step needs id ([a-z0-9-]), description (one line, no trailing period), check and apply; see docs/template-steps.md.',
  });
}

/** Load a profile by built-in name or file path, with its bases, validated. */
export function loadProfile(nameOrFile: string, cwd: string = process.cwd(), seen: string[] = []): Profile {
  const file = profilePath(nameOrFile, cwd);
  if (!existsSync(file)) {
    throw new CatalogError('TEMPLATE_PROFILE_NOT_FOUND', `no template profile "${nameOrFile}" (${file})`, {
      hint: `Built-in profiles: ${builtinProfileNames().join(', ')}; or pass a path to your own YAML profile.`,
    });
  }
  if (seen.includes(file)) fail(file, '', `extends itself through ${seen.join(' -> ')}`);
  const lineCounter = new LineCounter();
  const stats = statSync(file);
  if (!stats.isFile()) fail(file, '', `is a ${fileKind(stats)}, not a regular file; labctl does not read it`);
  if (stats.size > 4 * 1024 * 1024)
    fail(file, '', `has ${stats.size} bytes; profiles are small YAML files (at most 4 MiB)`);
  const document = parseDocument(readFileSync(file, 'utf8'), { lineCounter });
  if (document.errors.length > 0) fail(file, '', document.errors[0]?.message ?? 'invalid YAML');
  let raw: Record<string, unknown> | null;
  try {
    raw = document.toJS({ maxAliasCount: 50 }) as Record<string, unknown> | null;
  } catch (err) {
    fail(file, '', `cannot be read: ${(err as Error).message.split('\n')[0]}`);
  }
  if (!raw || typeof raw !== 'object') fail(file, '', 'expected a mapping with profile, description and steps');
  const lineOf = (index: number): string => {
    const steps = document.get('steps');
    const node = isSeq(steps) ? steps.items[index] : undefined;
    const offset = isMap(node) && node.range ? node.range[0] : undefined;
    return offset === undefined ? `: steps[${index}]` : `:${lineCounter.linePos(offset).line}: steps[${index}]`;
  };

  const extendsList = raw.extends === undefined ? [] : Array.isArray(raw.extends) ? raw.extends : [raw.extends];
  const bases = extendsList.map((base) => {
    if (typeof base !== 'string') fail(file, '', '`extends` must name profiles or files');
    return loadProfile(base, dirname(file), [...seen, file]);
  });
  const steps: Step[] = bases.flatMap((base) => base.steps.map((step) => ({ ...step })));
  const distributions = Array.isArray(raw.distributions)
    ? raw.distributions.map(String)
    : bases.flatMap((b) => b.distributions);
  if (!Array.isArray(raw.steps)) fail(file, '', '`steps` must be a list');

  const ownIds = new Set<string>();
  (raw.steps as RawStep[]).forEach((rawStep, index) => {
    const where = lineOf(index);
    if (typeof rawStep?.id !== 'string' || !ID_PATTERN.test(rawStep.id))
      fail(file, where, `step id must match [a-z0-9-], got ${JSON.stringify(rawStep?.id)}`);
    const id = rawStep.id;
    if (ownIds.has(id)) fail(file, where, `step id "${id}" appears twice`);
    ownIds.add(id);
    const base = steps.find((step) => step.id === id);
    const merged = {
      ...base,
      ...Object.fromEntries(Object.entries(rawStep).filter(([, value]) => value !== undefined)),
      source: file,
    } as Partial<Step> & { id: string };
    const step = validateStep(merged, file, where);
    if (base) steps[steps.indexOf(base)] = step;
    else steps.push(step);
  });

  const ordered = PHASES.flatMap((phase) => steps.filter((step) => step.phase === phase));
  return {
    name: typeof raw.profile === 'string' ? raw.profile : nameOrFile,
    description: typeof raw.description === 'string' ? raw.description : '',
    distributions,
    prelude: PRELUDE,
    steps: ordered,
    files: [...bases.flatMap((b) => b.files), file],
  };
}

function validateStep(step: Partial<Step> & { id: string }, file: string, where: string): Step {
  const { id } = step;
  const description = step.description;
  if (typeof description !== 'string' || description.trim() === '')
    fail(file, where, `step "${id}" needs a description`);
  if (description.includes('\n')) fail(file, where, `step "${id}": the description must be one line`);
  if (/\.\s*$/.test(description)) fail(file, where, `step "${id}": the description must not end with a period`);
  const phase = step.phase ?? 'configure';
  if (!PHASES.includes(phase)) fail(file, where, `step "${id}": phase must be one of ${PHASES.join(', ')}`);
  for (const key of ['check', 'apply'] as const) {
    if (typeof step[key] !== 'string' || step[key].trim() === '')
      fail(file, where, `step "${id}" needs a non-empty ${key} script`);
  }
  if (step.default !== undefined && typeof step.default !== 'boolean')
    fail(file, where, `step "${id}": default must be true or false`);
  if (step.verify !== undefined && typeof step.verify !== 'boolean')
    fail(file, where, `step "${id}": verify must be true or false`);
  if (step.notes !== undefined && typeof step.notes !== 'string') fail(file, where, `step "${id}": notes must be text`);
  return {
    id,
    description: description.trim(),
    ...(step.notes ? { notes: step.notes.trim() } : {}),
    phase,
    default: step.default ?? true,
    check: (step.check as string).trimEnd(),
    apply: (step.apply as string).trimEnd(),
    verify: step.verify ?? true,
    source: step.source ?? file,
  };
}

export interface Selection {
  /** Only these steps (ids), in catalog order. `defaults` and `all` are accepted as names. */
  steps?: string[];
  skip?: string[];
  /** Adds the `seal` step. */
  seal?: boolean;
}

/** Comma lists are accepted too: `--step a,b --step c`. */
function splitIds(values: string[] | undefined): string[] {
  return (values ?? [])
    .flatMap((value) => value.split(','))
    .map((id) => id.trim())
    .filter((id) => id !== '');
}

/** The steps a run does, in order; unknown ids are refused before anything runs. */
export function selectSteps(profile: Profile, selection: Selection = {}): Step[] {
  const known = new Set(profile.steps.map((step) => step.id));
  const wanted = splitIds(selection.steps);
  const skipped = splitIds(selection.skip);
  for (const id of [...wanted, ...skipped]) {
    if (id !== 'all' && id !== 'defaults' && !known.has(id)) {
      throw new UsageError('TEMPLATE_UNKNOWN_STEP', `profile ${profile.name} has no step "${id}"`, {
        hint: `Steps: ${[...known].join(', ')} (see: labctl template steps --profile ${profile.name})`,
      });
    }
  }
  const chosen = new Set<string>();
  if (wanted.length === 0 || wanted.includes('defaults'))
    for (const step of profile.steps) if (step.default) chosen.add(step.id);
  if (wanted.includes('all')) for (const step of profile.steps) if (step.id !== 'seal') chosen.add(step.id);
  for (const id of wanted) if (known.has(id)) chosen.add(id);
  if (selection.seal && known.has('seal')) chosen.add('seal');
  for (const id of skipped) chosen.delete(id);
  return profile.steps.filter((step) => chosen.has(step.id));
}
