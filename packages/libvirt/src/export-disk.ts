import { spawn } from 'node:child_process';
import { lstat, mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { EventSink } from '@labctl/core/events';
import { fileSha256 } from '@labctl/core/flows/bundle';
import type { DiskExportFacts, DiskExportRequest, DiskFormat } from '@labctl/core/provider';
import type { VmRecord } from '@labctl/core/state';
import { LibvirtError } from './connect.js';
import { imageFormatFor } from './disks.js';
import type { DiskStore } from './storage.js';
import type { Virsh } from './virsh.js';

/**
 * A VM's disk copied out with qemu-img (template capture, linked-clone bases, export). The VM's
 * overlay and its golden image are only read: the VM must be shut off, or the copy is of one of its
 * internal snapshots (whose clusters qemu never rewrites). The copy goes to `OUTPUT.labctl-partial`,
 * is fsynced, then renamed, so an interrupted copy never leaves a half image under the asked name.
 */
const QEMU_OUTPUT: Record<DiskFormat, { format: string; options: string[] }> = {
  qcow2: { format: 'qcow2', options: [] },
  raw: { format: 'raw', options: [] },
  vhd: { format: 'vpc', options: ['-o', 'subformat=dynamic'] },
  vhdx: { format: 'vhdx', options: ['-o', 'subformat=dynamic'] },
  // What OVF packages carry: a compressed, stream-readable VMDK.
  vmdk: { format: 'vmdk', options: ['-o', 'subformat=streamOptimized'] },
};

export interface ExportHost {
  virsh: Virsh;
  store: DiskStore;
}

export async function exportDomainDisk(
  host: ExportHost,
  vm: VmRecord,
  request: DiskExportRequest,
  events: EventSink,
): Promise<DiskExportFacts> {
  if (host.store.kind !== 'local')
    throw new LibvirtError(
      'EXPORT_REMOTE_HOST',
      `copying ${vm.name}'s disk out of the remote libvirt host ${host.virsh.uri} is not built yet`,
      { hint: 'Run labctl on the libvirt host itself (qemu:///system), or copy the volume with virsh vol-download.' },
    );
  const state = await host.virsh.domainState(vm.name);
  if (state === undefined)
    throw new LibvirtError('DOMAIN_MISSING', `domain ${vm.name} does not exist at ${host.virsh.uri}`);
  if (state !== 'shut off' && !request.snapshot)
    throw new LibvirtError('VM_RUNNING', `${vm.name} is ${state}: its disk would be copied while it writes`, {
      hint: `Stop it first (labctl stop ${vm.name}), or copy one of its snapshots (labctl snapshot list ${vm.name}).`,
    });
  const disk = await host.store.diskPath(vm.name);
  const golden = typeof vm.resources?.golden === 'string' ? vm.resources.golden : undefined;
  const output = resolve(request.output);
  for (const [path, what] of [
    [disk, "the VM's own disk"],
    [golden, 'its golden image'],
  ] as const) {
    if (path && resolve(path) === output)
      throw new LibvirtError('OUTPUT_IS_SOURCE', `refusing to write over ${what} ${output}`);
  }
  if (!request.flatten && (request.format !== 'qcow2' || !golden))
    throw new LibvirtError(
      'EXPORT_NOT_FLAT',
      `${vm.name}: only a qcow2 copy can keep depending on the golden image${golden ? '' : ' (and its golden image is not recorded)'}`,
    );
  const goldenFormat = golden ? imageFormatFor(golden) : undefined;
  if (!request.overwrite && (await exists(output)))
    throw new LibvirtError('OUTPUT_EXISTS', `${output} already exists`, {
      hint: 'Pick another output, or remove it first.',
    });
  const partial = `${output}.labctl-partial`;
  await mkdir(dirname(output), { recursive: true });
  await rm(partial, { force: true });
  const target = QEMU_OUTPUT[request.format];
  const args = [
    'convert',
    '-p',
    '-f',
    'qcow2',
    '-O',
    target.format,
    ...target.options,
    ...(request.snapshot ? ['-U', '-l', `snapshot.name=${request.snapshot}`] : []),
    ...(!request.flatten && golden && goldenFormat ? ['-B', golden, '-F', goldenFormat] : []),
    disk,
    partial,
  ];
  const phase = 'copy';
  events({
    subject: vm.name,
    phase,
    status: 'start',
    message: `${request.flatten ? 'flattening' : 'copying its own blocks of'} ${disk}${request.snapshot ? ` at snapshot ${request.snapshot}` : ''} to ${output}`,
  });
  try {
    await qemuImgWithProgress(args, (percent) =>
      events({ subject: vm.name, phase, status: 'progress', message: `${percent}%` }),
    );
    const handle = await open(partial, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(partial, output);
    const dir = await open(dirname(output), 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  } catch (err) {
    await rm(partial, { force: true });
    throw err;
  }
  const bytes = (await lstat(output)).size;
  const sha256 = await fileSha256(output);
  events({ subject: vm.name, phase, status: 'done', message: `${output} (${(bytes / 2 ** 20).toFixed(0)} MiB)` });
  return {
    path: output,
    format: request.format,
    bytes,
    sha256,
    ...(!request.flatten && golden ? { backing: golden } : {}),
  };
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch {
    return false;
  }
}

/** qemu-img with `-p`: its "(12.34/100%)" lines become a callback every 10 points. */
function qemuImgWithProgress(args: string[], progress: (percent: number) => void): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn('qemu-img', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let shown = 0;
    child.stdout.setEncoding('utf8').on('data', (text: string) => {
      for (const match of text.matchAll(/\((\d+(?:\.\d+)?)\/100%\)/g)) {
        const percent = Math.floor(Number(match[1]) / 10) * 10;
        if (percent > shown && percent < 100) {
          shown = percent;
          progress(percent);
        }
      }
    });
    child.stderr.setEncoding('utf8').on('data', (text: string) => {
      stderr += text;
    });
    child.on('error', (err) =>
      reject(
        new LibvirtError('COMMAND_NOT_FOUND', `qemu-img could not run: ${err.message}`, {
          hint: 'Install qemu-utils.',
        }),
      ),
    );
    child.on('exit', (code) => {
      if (code === 0) resolvePromise();
      else
        reject(
          new LibvirtError('QEMU_IMG_FAILED', `qemu-img convert failed: ${stderr.trim() || `exit ${code}`}`, {
            details: { stderr },
          }),
        );
    });
  });
}
