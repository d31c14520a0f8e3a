/**
 * On-disk constants of VHD (Microsoft "Virtual Hard Disk Image Format Specification" 1.0) and VHDX
 * ([MS-VHDX] v1). Every magic number the readers and writers use lives here.
 */
export const SECTOR = 512;
export const KiB = 1024;
export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;

// ---- VHD ----
export const VHD_FOOTER_SIZE = 512;
export const VHD_DYNAMIC_HEADER_SIZE = 1024;
export const VHD_FOOTER_COOKIE = 'conectix';
export const VHD_DYNAMIC_COOKIE = 'cxsparse';
export const VHD_VERSION = 0x00010000;
export const VHD_FEATURES_RESERVED = 2;
/** BAT entry of a block that is not allocated. */
export const VHD_BLOCK_UNUSED = 0xffffffff;
/** "No further data": the footer's data offset of a fixed disk, the header's data offset. */
export const VHD_NO_OFFSET = 0xffffffffffffffffn;
export const VHD_DISK_TYPE = { fixed: 2, dynamic: 3, differencing: 4 } as const;
export const VHD_PARENT_LOCATOR_COUNT = 8;
export const VHD_PARENT_LOCATOR_SIZE = 24;
export const VHD_PARENT_NAME_BYTES = 512;
/** Seconds between the Unix epoch and the VHD epoch (2000-01-01T00:00:00Z). */
export const VHD_EPOCH_OFFSET = 946_684_800;
/** The largest disk the VHD format allows (2040 GiB). */
export const VHD_MAX_SIZE = 2040 * GiB;
export const VHD_DEFAULT_BLOCK_SIZE = 2 * MiB;
/**
 * Creator application written into new VHDs. Readers decide how to compute the virtual size from it:
 * qemu uses CHS geometry for unknown creators and the footer's current size for "win " (Hyper-V).
 * labctl writes exactly what New-VHD writes, so it identifies the layout as Hyper-V's.
 */
export const VHD_CREATOR_APP = 'win ';
export const VHD_CREATOR_HOST_OS = 0x5769326b; // "Wi2k"
/** Parent locator platform codes labctl reads (and writes): Windows absolute / relative, UTF-16LE. */
export const VHD_LOCATOR_ABSOLUTE = 'W2ku';
export const VHD_LOCATOR_RELATIVE = 'W2ru';

// ---- VHDX ----
export const VHDX_SIGNATURE = 'vhdxfile';
export const VHDX_HEADER_SIGNATURE = 'head';
export const VHDX_REGION_SIGNATURE = 'regi';
export const VHDX_METADATA_SIGNATURE = 'metadata';
export const VHDX_HEADER_OFFSETS = [64 * KiB, 128 * KiB] as const;
export const VHDX_HEADER_SIZE = 4 * KiB;
export const VHDX_REGION_OFFSETS = [192 * KiB, 256 * KiB] as const;
export const VHDX_REGION_SIZE = 64 * KiB;
export const VHDX_REGION_MAX_ENTRIES = 2047;
export const VHDX_METADATA_TABLE_SIZE = 64 * KiB;
export const VHDX_METADATA_MAX_ENTRIES = 2047;
export const VHDX_ALIGNMENT = MiB;
export const VHDX_MAX_SIZE = 64 * 1024 * GiB;
export const VHDX_DEFAULT_BLOCK_SIZE = 2 * MiB;
export const VHDX_SECTOR_BITMAP_BLOCK_SIZE = MiB;
/** Sectors described by one sector-bitmap block: 2^23. */
export const VHDX_SECTORS_PER_BITMAP_BLOCK = 2 ** 23;

export const VHDX_REGION = {
  bat: '2dc27766-f623-4200-9d64-115e9bfd4a08',
  metadata: '8b7ca206-4790-4b9a-b8fe-575f050f886e',
} as const;

export const VHDX_METADATA = {
  fileParameters: 'caa16737-fa36-4d43-b3b6-33f0aa44e76b',
  virtualDiskSize: '2fa54224-cd1b-4876-b211-5dbed83bf4b8',
  page83Data: 'beca12ab-b2e6-4523-93ef-c309e000c746',
  logicalSectorSize: '8141bf1d-a96f-4709-ba47-f233a8faab5f',
  physicalSectorSize: 'cda348c7-445d-4471-9cc9-e9885251c556',
  parentLocator: 'a8d35f2d-b30b-454d-abf7-d3d84834ab0c',
} as const;

export const VHDX_PARENT_LOCATOR_TYPE = 'b04aefb7-d19e-4a81-b789-25b8e9445913';

/** Payload / sector-bitmap block states (low 3 bits of a BAT entry). */
export const VHDX_BLOCK = {
  notPresent: 0,
  undefined: 1,
  zero: 2,
  unmapped: 3,
  fullyPresent: 6,
  partiallyPresent: 7,
} as const;

export const VHDX_FILE_PARAMS_LEAVE_ALLOCATED = 1;
export const VHDX_FILE_PARAMS_HAS_PARENT = 2;
export const VHDX_METADATA_FLAG = { isUser: 1, isVirtualDisk: 2, isRequired: 4 } as const;

/** Chains deeper than this are refused (Hyper-V's own limit is far lower in practice). */
export const MAX_CHAIN_DEPTH = 128;
/** Largest BAT labctl keeps in memory (a 64 TiB VHDX with 32 MiB blocks needs 16 MiB). */
export const MAX_BAT_BYTES = 64 * MiB;

/** Load-time layout assertions: the struct sizes must match the specification. */
function assertLayout(): void {
  if (VHD_PARENT_LOCATOR_SIZE * VHD_PARENT_LOCATOR_COUNT + 576 + 256 !== VHD_DYNAMIC_HEADER_SIZE) {
    throw new Error('VHD dynamic header layout does not add up to 1024 bytes');
  }
  if (VHDX_REGION_OFFSETS[0] !== VHDX_HEADER_OFFSETS[1] + 64 * KiB) throw new Error('VHDX header layout is wrong');
}
assertLayout();
