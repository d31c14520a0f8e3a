import { basename } from 'node:path';
import { defineConfig } from 'vitest/config';

/**
 * One vitest config for every package: tests sit next to the code (`src/**\/*.test.ts`), in-repo
 * imports resolve to TypeScript source through the `labctl-source` export condition. When
 * LABCTL_TEST_REPORT_DIR is set (scripts/test.sh), each package also writes a JSON report that the
 * script sums into one closing line.
 */
export function labctlVitestConfig(options: { testTimeout?: number; fileParallelism?: boolean } = {}) {
  const reportDir = process.env.LABCTL_TEST_REPORT_DIR;
  const reporters: Array<string | [string, Record<string, unknown>]> = ['default'];
  if (reportDir) reporters.push(['json', { outputFile: `${reportDir}/${basename(process.cwd())}.json` }]);
  return defineConfig({
    resolve: { conditions: ['labctl-source'] },
    ssr: { resolve: { conditions: ['labctl-source'] } },
    test: {
      include: ['src/**/*.test.ts', 'e2e/**/*.test.ts', 'hostile/**/*.test.ts'],
      testTimeout: options.testTimeout ?? 20_000,
      hookTimeout: 300_000,
      pool: 'forks',
      fileParallelism: options.fileParallelism ?? true,
      reporters,
    },
  });
}
