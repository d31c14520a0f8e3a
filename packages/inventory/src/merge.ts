import { UsageError } from '@labctl/core/errors';
import { beginMarker, emitIniBlock, emitYamlBlock, endMarker } from './emit.js';
import type { Inventory } from './model.js';
import { type ParsedInventory, parseInventory } from './parse.js';

/**
 * `--merge`: put labctl's block into a hand-written inventory. Everything outside the block between
 * the BEGIN/END markers is kept byte for byte; the block is replaced where it was (or appended the
 * first time). The hand-written part is parsed with Ansible's rules first, so a file Ansible could
 * not read, or a result that would not read back, is refused before anything is written.
 */
export interface MergeResult {
  text: string;
  /** True when the file had no labctl block yet. */
  appended: boolean;
  warnings: string[];
}

const isBlank = (text: string) => text.split('\n').every((line) => !line.trim() || line.trim().startsWith('#'));

export function mergeInventoryText(
  existing: string,
  format: 'ini' | 'yaml',
  inventory: Inventory,
  source: string,
): MergeResult {
  const warnings: string[] = [];
  const lines = existing.split('\n');
  const begin = lines.findIndex((line) => line.startsWith(beginMarker(inventory.lab).split(' - ')[0] as string));
  const end =
    begin < 0 ? -1 : lines.findIndex((line, index) => index > begin && line.startsWith(endMarker(inventory.lab)));
  if (begin >= 0 && end < 0) {
    throw new UsageError(
      'INVENTORY_MERGE',
      `${source}:${begin + 1}: labctl's block for lab "${inventory.lab}" has a BEGIN marker but no END marker`,
      {
        hint: `Restore the line "${endMarker(inventory.lab)}" after the block, or delete the whole block.`,
      },
    );
  }
  const before = begin < 0 ? existing : lines.slice(0, begin).join('\n') + (begin > 0 ? '\n' : '');
  const after = begin < 0 ? '' : lines.slice(end + 1).join('\n');
  const handWritten = `${before}${after}`;

  let hand: ParsedInventory | undefined;
  const ourGroupNames = inventory.groups.map((group) => group.name);
  if (!isBlank(handWritten)) hand = parseInventory(handWritten, format, `${source} (hand-written part)`, ourGroupNames);
  if (hand) {
    const ours = new Set(inventory.hosts.map((host) => host.name));
    const clashingHosts = Object.keys(hand.hostvars).filter((name) => ours.has(name));
    if (clashingHosts.length) {
      warnings.push(
        `${source} also defines host(s) ${clashingHosts.join(', ')} by hand; Ansible merges their vars with labctl's`,
      );
    }
    if (format === 'yaml' && new RegExp(`^["']?${inventory.rootGroup}["']?\\s*:`, 'm').test(handWritten)) {
      throw new UsageError(
        'INVENTORY_MERGE',
        `${source}: the hand-written part has a top-level "${inventory.rootGroup}:" key, which labctl's block owns`,
        {
          hint: 'Rename or remove that key; labctl writes the group itself.',
        },
      );
    }
    const ourGroups = new Set(inventory.groups.slice(1).map((group) => group.name));
    // A hand-written host in one of labctl's groups would become a child of labctl's root group and
    // inherit its strict known_hosts settings (and become unreachable): refuse instead of moving it.
    for (const [name, group] of Object.entries(hand.groups)) {
      if (!ourGroups.has(name)) continue;
      const theirs = group.hosts.filter((host) => !ours.has(host));
      if (theirs.length === 0) continue;
      throw new UsageError(
        'INVENTORY_MERGE_GROUP',
        `${source}: the hand-written group "${name}" has host(s) ${theirs.slice(0, 5).join(', ')}${theirs.length > 5 ? ', ...' : ''}, and labctl's block also writes a group "${name}"`,
        {
          hint: `Merging would put your hosts under ${inventory.rootGroup} and its strict host-key settings. Rename your group, or labctl's (the group's name in labctl.yaml), or write labctl's inventory to its own file with -o.`,
          details: { group: name, hosts: theirs },
        },
      );
    }
    const shared = Object.entries(hand.groups)
      .filter(
        ([name, group]) =>
          ourGroups.has(name) && (group.hosts.length || Object.keys(group.vars).length || group.children.length),
      )
      .map(([name]) => name);
    if (shared.length)
      warnings.push(`${source} also defines group(s) ${shared.join(', ')} by hand; Ansible merges them with labctl's`);
  }

  const block = format === 'ini' ? emitIniBlock(inventory) : emitYamlBlock(inventory);
  let text: string;
  if (begin >= 0) text = `${before}${block}${after}`;
  else
    text = `${existing}${existing === '' || existing.endsWith('\n') ? '' : '\n'}${existing === '' ? '' : '\n'}${block}`;

  // The result must read back with every labctl host in it, or nothing is written.
  let merged: ParsedInventory;
  try {
    merged = parseInventory(text, format, source);
  } catch (err) {
    throw new UsageError(
      'INVENTORY_MERGE',
      `${source}: merging labctl's block would give an inventory Ansible cannot read: ${(err as Error).message}`,
      {
        hint: 'Check the hand-written part (for YAML: block style, no "..." document end), or write labctl\'s inventory to its own file with -o.',
      },
    );
  }
  const missing = inventory.hosts.filter((host) => !merged.hostvars[host.name]).map((host) => host.name);
  if (missing.length) {
    throw new UsageError(
      'INVENTORY_MERGE',
      `${source}: after merging, host(s) ${missing.join(', ')} would be missing`,
      {
        hint: "Write labctl's inventory to its own file with -o and pass both files to ansible -i.",
      },
    );
  }
  return { text, appended: begin < 0, warnings };
}
