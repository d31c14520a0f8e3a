import { defineConfig } from 'vitest/config';

/** One vitest config for every package: tests sit next to the code, in-repo imports resolve to TypeScript source. */
export function labctlVitestConfig(options: { testTimeout?: number } = {}) {
  return defineConfig({
    resolve: { conditions: ['labctl-source'] },
    ssr: { resolve: { conditions: ['labctl-source'] } },
    test: {
      include: ['src/**/*.test.ts', '*.test.ts', 'e2e/**/*.test.ts'],
      testTimeout: options.testTimeout ?? 20_000,
      hookTimeout: 180_000,
      pool: 'forks',
      reporters: ['default'],
    },
  });
}
