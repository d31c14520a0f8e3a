import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { requireTestbed } from '@labctl/core/testing/testbed';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { detectInventoryFormat, parseInventory } from './parse.js';
import { ansibleInventoryList, canonicalFromAnsible, canonicalFromParsed } from './testing/ansible.js';

/** The parser against hand-written inventories (fixtures/corpus), compared with what ansible-inventory makes of each. */
const corpus = resolve(import.meta.dirname, '../fixtures/corpus');
const files = (await readdir(corpus)).sort();
const gate = requireTestbed('the inventory parser corpus', { commands: ['ansible-inventory'] });

describe.skipIf(gate.skip)('parser vs ansible-inventory on the corpus', () => {
  let tmp: string;
  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'inventory-corpus-'));
  });
  afterAll(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  it('has a corpus of both formats', () => {
    expect(files.filter((f) => f.endsWith('.ini')).length).toBeGreaterThanOrEqual(5);
    expect(files.filter((f) => /\.(ya?ml|json)$/.test(f)).length).toBeGreaterThanOrEqual(4);
  });

  for (const file of files) {
    it(`${file}: same groups, hosts and vars as ansible-inventory`, async () => {
      const path = join(corpus, file);
      const text = await readFile(path, 'utf8');
      const parsed = parseInventory(text, detectInventoryFormat(path, text), path);
      const seen = canonicalFromAnsible(await ansibleInventoryList(path, tmp));
      expect(Object.values(seen.groups).some((group) => group.hosts.length > 0)).toBe(true);
      expect(canonicalFromParsed(parsed)).toEqual(seen);
    });
  }
});
