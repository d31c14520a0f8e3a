import { isLabctlError } from '@labctl/core/errors';
import { openChain, openDisk } from './chain.js';
import type { DiskFormat, DiskType, Finding } from './image.js';

export interface CheckResult {
  path: string;
  format?: DiskFormat;
  type?: DiskType;
  ok: boolean;
  findings: Finding[];
}

/**
 * Structural validation of one file: checksums (footer, dynamic header, VHDX headers and region
 * tables), BAT entries inside the file, aligned and not overlapping each other or the metadata,
 * sector-bitmap blocks present for partially present VHDX blocks, locators inside the file, a clean
 * VHDX log; for a differencing disk, that its whole parent chain can be found, matches and does not loop. Collects every
 * problem it can instead of stopping at the first; `ok` is false when any finding is an error.
 */
export async function checkDisk(
  path: string,
  options: { search?: readonly string[]; allowGrownChild?: boolean } = {},
): Promise<CheckResult> {
  const findings: Finding[] = [];
  let image: Awaited<ReturnType<typeof openDisk>>;
  try {
    image = await openDisk(path, { strict: false });
  } catch (err) {
    // Bad input (missing file, a FIFO or directory) is refused (exit 2), not a finding about a disk.
    if (!isLabctlError(err) || err.exitCode === 2) throw err;
    return { path, ok: false, findings: [{ severity: 'error', code: err.code, message: err.message }] };
  }
  try {
    findings.push(...image.findings);
    if (image.parent && !findings.some((f) => f.severity === 'error')) {
      try {
        // The whole chain, not just the parent: a loop or a broken link further down makes this disk unreadable too.
        const chain = await openChain(path, {
          search: options.search ?? [],
          ...(options.allowGrownChild ? { allowGrownChild: true } : {}),
        });
        await chain.close();
        for (const link of chain.links) {
          if (!link.timestampMismatch) continue;
          findings.push({
            severity: 'warning',
            code: 'VHD_PARENT_TIMESTAMP',
            message: `${link.path}: parent timestamp: expected ${link.timestampMismatch.expected}, found ${link.timestampMismatch.found}`,
          });
        }
      } catch (err) {
        if (!isLabctlError(err)) throw err;
        findings.push({ severity: 'error', code: err.code, message: err.message });
      }
    }
    return {
      path,
      format: image.format,
      type: image.type,
      ok: !findings.some((f) => f.severity === 'error'),
      findings,
    };
  } finally {
    await image.close();
  }
}
