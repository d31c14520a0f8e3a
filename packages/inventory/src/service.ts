import { mkdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { UsageError } from '@labctl/core/errors';
import { type LoadedLabFile, loadLabFile } from '@labctl/core/spec';
import { emptyState, STATE_DIR, StateStore } from '@labctl/core/state';
import {
  commentText,
  dynamicHost,
  dynamicList,
  emitInventory,
  hasTemplatedValues,
  type InventoryFormat,
  OWNER_MARK,
} from './emit.js';
import { checkOverwrite, readIfExists, writeFileAtomic } from './files.js';
import { mergeInventoryText } from './merge.js';
import { type BuildResult, buildInventory, type SkippedVm } from './model.js';
import { detectInventoryFormat } from './parse.js';

/**
 * What `labctl inventory` does, one function per mode. Everything is read and checked before the
 * first file is written, so a refusal (exit 2) leaves every file as it was.
 */
export interface LabSource {
  labDir: string;
  /** An explicit lab file; default labctl.yaml in the lab directory (optional). */
  labFile?: string;
}

export interface InventorySummary {
  lab: string;
  hosts: number;
  groups: string[];
  skipped: SkippedVm[];
  warnings: string[];
}

export const KNOWN_HOSTS_FILE = 'known_hosts';

/** The inventory of a lab, with `ansible_ssh_common_args` pointing at `knownHostsFile`. */
export async function loadInventory(
  source: LabSource,
  knownHostsFile: string,
): Promise<BuildResult & { labFile: LoadedLabFile }> {
  const labFile = await loadLabFile(source.labDir, source.labFile);
  const state = (await new StateStore(source.labDir).read()) ?? emptyState(labFile.lab);
  const built = buildInventory(state, labFile.spec, { knownHostsFile, resolvePath: labFile.resolvePath });
  return { ...built, labFile };
}

function summary(built: BuildResult, extraWarnings: string[] = []): InventorySummary {
  return {
    lab: built.inventory.lab,
    hosts: built.inventory.hosts.length,
    groups: built.inventory.groups.map((group) => group.name),
    skipped: built.skipped,
    warnings: [...built.warnings, ...extraWarnings],
  };
}

function knownHostsText(built: BuildResult): string {
  return `# known_hosts ${OWNER_MARK} for lab "${commentText(built.inventory.lab)}": the recorded host keys of its VMs.\n${built.inventory.knownHosts.map((line) => `${line}\n`).join('')}`;
}

/** Write known_hosts only when its content changed (so `--list` stays cheap and mostly read-only). */
async function writeKnownHosts(path: string, built: BuildResult): Promise<void> {
  const text = knownHostsText(built);
  if ((await readIfExists(path, 'known_hosts file')) !== text)
    await writeFileAtomic(path, text, 0o644, 'known_hosts file');
}

function iniTemplatingWarning(built: BuildResult, format: InventoryFormat): string[] {
  if (format !== 'ini' || !hasTemplatedValues(built.inventory)) return [];
  return [
    'some values contain {{ }}, {% %} or {# #}: INI cannot mark them unsafe, so plays will template them; use --format yaml or json to keep them literal',
  ];
}

/** Stdout mode: the inventory text; known_hosts goes to .labctl/known_hosts of the lab. */
export async function renderInventory(
  source: LabSource,
  format: InventoryFormat,
): Promise<InventorySummary & { content: string; knownHostsFile: string }> {
  const knownHostsFile = join(resolve(source.labDir), STATE_DIR, KNOWN_HOSTS_FILE);
  const built = await loadInventory(source, knownHostsFile);
  await writeKnownHostsInStateDir(knownHostsFile, built);
  return {
    ...summary(built, iniTemplatingWarning(built, format)),
    content: emitInventory(built.inventory, format),
    knownHostsFile,
  };
}

/** known_hosts in the lab's .labctl directory (made when missing). */
export async function writeKnownHostsInStateDir(path: string, built: BuildResult): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  await writeKnownHosts(path, built);
}

export interface WriteOptions extends LabSource {
  format: InventoryFormat;
  output: string;
  force?: boolean;
}

/** `-o FILE`: the inventory and a `known_hosts` beside it, both atomically; refuses files labctl did not write. */
export async function writeInventory(
  options: WriteOptions,
): Promise<InventorySummary & { output: string; knownHostsFile: string }> {
  const output = resolve(options.output);
  const knownHostsFile = join(dirname(output), KNOWN_HOSTS_FILE);
  const built = await loadInventory(options, knownHostsFile);
  await checkOverwrite(
    output,
    options.force ?? false,
    'inventory',
    "Pass --force to replace it, or --merge to keep what is in it and add labctl's hosts.",
  );
  await checkOverwrite(knownHostsFile, options.force ?? false, 'known_hosts file');
  await writeKnownHosts(knownHostsFile, built);
  await writeFileAtomic(output, emitInventory(built.inventory, options.format), 0o644, 'inventory');
  return { ...summary(built, iniTemplatingWarning(built, options.format)), output, knownHostsFile };
}

export interface MergeOptions extends LabSource {
  existing: string;
  /** Where the result goes; default the existing file itself. */
  output?: string;
  format?: InventoryFormat;
  force?: boolean;
}

/** `--merge EXISTING`: keep the hand-written part, replace labctl's block. */
export async function mergeInventory(
  options: MergeOptions,
): Promise<InventorySummary & { output: string; knownHostsFile: string; format: 'ini' | 'yaml'; appended: boolean }> {
  const existingPath = resolve(options.existing);
  if (/\.json$/i.test(existingPath) || options.format === 'json') {
    throw new UsageError(
      'INVENTORY_MERGE_FORMAT',
      `cannot merge into JSON (${existingPath}): JSON has no comments to mark labctl's block`,
      {
        hint: "Write labctl's inventory to its own file (-o labctl.json) and give Ansible both: ansible -i yours.json -i labctl.json",
      },
    );
  }
  const existing = (await readIfExists(existingPath, 'inventory')) ?? '';
  const format = detectInventoryFormat(existingPath, existing);
  if (options.format && options.format !== format) {
    throw new UsageError(
      'INVENTORY_MERGE_FORMAT',
      `${existingPath} is a ${format.toUpperCase()} inventory; cannot merge it as ${options.format}`,
      {
        hint: `Leave out --format (the existing file decides), or use --format ${format}.`,
      },
    );
  }
  const output = resolve(options.output ?? existingPath);
  const knownHostsFile = join(dirname(output), KNOWN_HOSTS_FILE);
  const built = await loadInventory(options, knownHostsFile);
  const merged = mergeInventoryText(existing, format, built.inventory, existingPath);
  if (output !== existingPath) await checkOverwrite(output, options.force ?? false, 'inventory');
  await checkOverwrite(knownHostsFile, options.force ?? false, 'known_hosts file');
  await writeKnownHosts(knownHostsFile, built);
  await writeFileAtomic(output, merged.text, 0o644, 'inventory');
  return {
    ...summary(built, [...merged.warnings, ...iniTemplatingWarning(built, format)]),
    output,
    knownHostsFile,
    format,
    appended: merged.appended,
  };
}

/** `--list`: the dynamic-inventory answer; known_hosts is kept in .labctl/ of the lab. */
export async function answerList(
  source: LabSource,
): Promise<{ answer: Record<string, unknown>; summary: InventorySummary }> {
  const knownHostsFile = join(resolve(source.labDir), STATE_DIR, KNOWN_HOSTS_FILE);
  const built = await loadInventory(source, knownHostsFile);
  await writeKnownHostsInStateDir(knownHostsFile, built);
  return { answer: dynamicList(built.inventory), summary: summary(built) };
}

export async function answerHost(source: LabSource, host: string): Promise<Record<string, unknown>> {
  const knownHostsFile = join(resolve(source.labDir), STATE_DIR, KNOWN_HOSTS_FILE);
  const built = await loadInventory(source, knownHostsFile);
  return dynamicHost(built.inventory, host);
}

function shellQuote(value: string): string {
  return `'${value.replaceAll("'", `'"'"'`)}'`;
}

export interface ScriptOptions {
  labDir: string;
  script: string;
  /** The command that runs labctl, absolute: e.g. [process.execPath, '/.../bin/run.js']. */
  labctl: string[];
  force?: boolean;
}

/** `--script FILE`: a small executable for `ansible-inventory -i FILE` that asks labctl (this lab) for `--list`/`--host`. */
export async function writeInventoryScript(options: ScriptOptions): Promise<{ script: string; labDir: string }> {
  const script = resolve(options.script);
  const labDir = resolve(options.labDir);
  await checkOverwrite(script, options.force ?? false, 'script');
  const text = [
    '#!/bin/sh',
    `# Ansible dynamic inventory ${OWNER_MARK} --script for the lab in ${labDir.replaceAll('\n', ' ')}.`,
    '# Ansible runs it with --list (or --host NAME); labctl answers from the lab state.',
    `exec ${options.labctl.map(shellQuote).join(' ')} inventory --lab-dir ${shellQuote(labDir)} "$@"`,
    '',
  ].join('\n');
  await writeFileAtomic(script, text, 0o755, 'inventory script');
  return { script, labDir };
}
