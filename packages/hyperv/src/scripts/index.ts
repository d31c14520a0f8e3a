import type { PowerShellScript } from '@labctl/remote/powershell';
import { composeScript, type ScriptParts } from './common.js';
import { exportVm, importVm } from './bundle.js';
import { configureMigration } from './configure_migration.js';
import { copyDisk } from './copy_disk.js';
import { createVms } from './create_vms.js';
import { getAdapters } from './get_adapters.js';
import { getHostFacts } from './get_host_facts.js';
import { listVms } from './list_vms.js';
import { moveVms } from './move_vms.js';
import { registerVms } from './register_vms.js';
import { removeVms } from './remove_vms.js';
import { snapshotVms } from './snapshot_vms.js';
import { startVms } from './start_vms.js';
import { stopVms } from './stop_vms.js';

/** Every script the Hyper-V provider can run, by operation name (verb_object). */
const PARTS = [
  getHostFacts,
  createVms,
  startVms,
  stopVms,
  snapshotVms,
  copyDisk,
  exportVm,
  importVm,
  getAdapters,
  listVms,
  removeVms,
  registerVms,
  configureMigration,
  moveVms,
] as const satisfies readonly ScriptParts[];

export type ScriptName =
  | 'get_host_facts'
  | 'create_vms'
  | 'start_vms'
  | 'stop_vms'
  | 'snapshot_vms'
  | 'copy_disk'
  | 'export_vm'
  | 'import_vm'
  | 'get_adapters'
  | 'list_vms'
  | 'remove_vms'
  | 'register_vms'
  | 'configure_migration'
  | 'move_vms';

export const SCRIPTS: Readonly<Record<ScriptName, PowerShellScript & { synopsis: string }>> = Object.fromEntries(
  PARTS.map((parts) => [parts.name, { name: parts.name, synopsis: parts.synopsis, text: composeScript(parts) }]),
) as Record<ScriptName, PowerShellScript & { synopsis: string }>;

export const SCRIPT_NAMES = PARTS.map((parts) => parts.name as ScriptName);
if (SCRIPT_NAMES.length !== new Set(SCRIPT_NAMES).size) throw new Error('duplicate labctl script name');
