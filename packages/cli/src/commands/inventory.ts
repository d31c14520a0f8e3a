import { UsageError } from '@labctl/core/errors';
import { isStdoutPath } from '@labctl/core/files';
import { INVENTORY_FORMATS, type InventoryFormat } from '@labctl/inventory/emit';
import {
  answerHost,
  answerList,
  type InventorySummary,
  mergeInventory,
  renderInventory,
  writeInventory,
  writeInventoryScript,
} from '@labctl/inventory/service';
import { Flags } from '@oclif/core';
import { LabctlCommand } from '../base-command.js';

export type InventoryResult =
  | (InventorySummary & { mode: 'stdout'; format: InventoryFormat; knownHostsFile: string; inventory: string })
  | (InventorySummary & { mode: 'file'; format: InventoryFormat; output: string; knownHostsFile: string })
  | (InventorySummary & {
      mode: 'merge';
      format: 'ini' | 'yaml';
      output: string;
      knownHostsFile: string;
      appended: boolean;
    })
  | { mode: 'script'; script: string; labDir: string }
  | Record<string, unknown>;

export default class Inventory extends LabctlCommand<typeof Inventory> {
  static override needsLab = true;
  static override summary =
    'Write the Ansible inventory of the lab (INI, YAML or JSON), or answer as a dynamic inventory.';
  static override description =
    "Hosts are the lab's VMs with a usable address (ansible_host, ansible_port, ansible_user, key file, the VM's vars); groups are " +
    'the VM groups, the groups of `inventory:` in labctl.yaml, and labctl_<lab> holding them all. SSH host keys recorded in the state ' +
    'are written to a known_hosts file beside the inventory, and ansible_ssh_common_args makes ssh check them strictly. ' +
    'Files labctl did not write are never replaced without --force; --merge keeps everything outside the labctl block. ' +
    'With --list / --host labctl speaks the dynamic-inventory protocol (with _meta.hostvars); --script writes an executable for ansible -i. ' +
    'See docs/inventory.md.';
  static override examples = [
    {
      description: 'A YAML inventory (and known_hosts beside it)',
      command: '<%= config.bin %> <%= command.id %> --format yaml -o hosts.yml',
    },
    {
      description: 'Add or refresh the labctl block in a hand-written inventory',
      command: '<%= config.bin %> <%= command.id %> --merge inventory.ini',
    },
    {
      description: 'A dynamic inventory script for Ansible',
      command:
        '<%= config.bin %> <%= command.id %> --script lab-inventory.sh && ansible-inventory -i lab-inventory.sh --list',
    },
  ];
  static override flags = {
    format: Flags.option({
      char: 'f',
      summary: 'Inventory format (default ini; with --merge, the existing file decides).',
      options: INVENTORY_FORMATS,
    })(),
    output: Flags.string({
      char: 'o',
      summary:
        'Write to FILE (atomically, keeping its mode and owner) instead of stdout (- is stdout); known_hosts goes beside it.',
    }),
    force: Flags.boolean({ summary: 'Replace an output file (or known_hosts, or script) that labctl did not write.' }),
    merge: Flags.string({
      summary: "Keep this hand-written INI/YAML inventory and replace only labctl's block in it (in place unless -o).",
      exclusive: ['list', 'host', 'script'],
    }),
    list: Flags.boolean({
      summary: 'Dynamic inventory: print every group and _meta.hostvars as JSON.',
      exclusive: ['host', 'script', 'output', 'merge'],
    }),
    host: Flags.string({
      summary: 'Dynamic inventory: print the vars of one host as JSON.',
      exclusive: ['list', 'script', 'output', 'merge'],
    }),
    script: Flags.string({
      summary: 'Write an executable FILE that Ansible can use as a dynamic inventory of this lab.',
      exclusive: ['list', 'host', 'output', 'merge'],
    }),
  };

  async run(): Promise<InventoryResult> {
    const { format, output, force, merge, list, host, script } = this.flags;
    const source = { labDir: this.labDir };
    if (list || host !== undefined) {
      let answer: Record<string, unknown>;
      if (list) {
        const listed = await answerList(source);
        // Ansible shows a dynamic inventory's stderr in every run: warnings (a VM without an
        // address yet) stay out of it unless --debug asks; errors still reach it.
        if (this.debugEnabled()) this.noteAll(listed.summary.warnings);
        answer = listed.answer;
      } else answer = await answerHost(source, host as string);
      if (!this.jsonEnabled()) process.stdout.write(`${JSON.stringify(answer)}\n`);
      return answer;
    }
    if (script !== undefined) {
      if (format)
        throw new UsageError('USAGE', '--format has no meaning with --script', {
          hint: 'The script answers --list in JSON.',
        });
      const [node, bin] = [process.execPath, process.argv[1]];
      const written = await writeInventoryScript({
        labDir: this.labDir,
        script,
        labctl: bin ? [node, bin] : [node],
        force,
      });
      this.log(`Wrote ${written.script}; try: ansible-inventory -i ${written.script} --list`);
      return { mode: 'script', ...written };
    }
    if (merge !== undefined) {
      const result = await mergeInventory({ ...source, existing: merge, output, format, force });
      this.noteAll(result.warnings);
      this.log(
        `${result.appended ? 'Added' : 'Replaced'} labctl's block (${result.hosts} hosts) in ${result.output}; known_hosts: ${result.knownHostsFile}`,
      );
      return { mode: 'merge', ...result };
    }
    if (output !== undefined && !isStdoutPath(output)) {
      const result = await writeInventory({ ...source, format: format ?? 'ini', output, force });
      this.noteAll(result.warnings);
      this.log(
        `Wrote ${result.output} (${result.hosts} hosts, ${result.groups.length} groups); known_hosts: ${result.knownHostsFile}`,
      );
      return { mode: 'file', format: format ?? 'ini', ...result };
    }
    const result = await renderInventory(source, format ?? 'ini');
    this.noteAll(result.warnings);
    if (!this.jsonEnabled()) process.stdout.write(result.content);
    const { content, ...rest } = result;
    return { mode: 'stdout', format: format ?? 'ini', ...rest, inventory: content };
  }

  private noteAll(messages: string[]): void {
    for (const message of messages) this.note(message);
  }
}
