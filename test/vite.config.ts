import { labctlVitestConfig } from '../vitest.shared.js';

// End-to-end suites start VMs and servers: one file at a time keeps 2 cores from thrashing.
export default labctlVitestConfig({ testTimeout: 600_000, fileParallelism: false });
