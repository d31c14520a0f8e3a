import { labctlVitestConfig } from '../../vitest.shared.js';

export default labctlVitestConfig();
