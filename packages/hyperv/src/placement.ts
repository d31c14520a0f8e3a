/** Placement is core's, one rule for every provider that spans hosts. */
export {
  batches,
  HOST_MEMORY_RESERVE,
  type HostCapacity,
  type PlacementResult,
  placeVms,
} from '@labctl/core/placement';
