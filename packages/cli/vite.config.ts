import { labctlVitestConfig } from '../../vitest.shared.js';

export default labctlVitestConfig({ testTimeout: 60_000 });
