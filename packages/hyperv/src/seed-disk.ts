import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { VmSeed } from '@labctl/core/provider';
import { isoImage } from '@labctl/seed/iso9660';
import { SEED_LABEL } from '@labctl/seed/nocloud';
import { createDisk } from '@labctl/vhd/writer';

/**
 * A VM's NoCloud seed as Hyper-V takes it: the cidata ISO 9660 filesystem inside a small dynamic
 * VHDX made by labctl's own VHDX writer (a Gen2 VM has no CD drive to spare; a second SCSI disk is
 * what the cloud-image scripts attach too). Sent gzip-compressed and base64-encoded inside
 * create_vms's JSON input (stdin, never the command line): a few KiB per VM, whatever the number.
 */
const MiB = 1024 * 1024;

export async function seedVhdx(seed: VmSeed): Promise<Buffer> {
  const iso = isoImage(seed.files, SEED_LABEL);
  const dir = await mkdtemp(join(tmpdir(), 'labctl-seed-'));
  try {
    const path = join(dir, 'seed.vhdx');
    const writer = await createDisk(path, {
      format: 'vhdx',
      type: 'dynamic',
      virtualSize: Math.max(1, Math.ceil(iso.length / MiB)) * MiB,
      blockSize: MiB,
    });
    try {
      await writer.write(0, iso);
      await writer.finish();
    } catch (err) {
      await writer.abort();
      throw err;
    }
    return await readFile(path);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** What create_vms gets per VM: gzip + base64 of the VHDX. */
export async function seedPayload(seed: VmSeed): Promise<string> {
  return gzipSync(await seedVhdx(seed), { level: 9 }).toString('base64');
}
