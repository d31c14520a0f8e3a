import { labctlVitestConfig } from '../../vitest.shared.js';

// Hyper-V tests run every script under a real pwsh (about 1.5 s a start on 2 cores).
export default labctlVitestConfig({ testTimeout: 90_000 });
