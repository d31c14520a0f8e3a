#!/usr/bin/env node
// Sum the per-package vitest JSON reports into one closing line: "test: N passed, N failed, N skipped".
// Exits 1 when a step failed, a test failed, or no test ran at all.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const [dir, failedSteps = ''] = process.argv.slice(2);
let passed = 0;
let failed = 0;
let skipped = 0;
const perPackage = [];
for (const file of readdirSync(dir).filter((f) => f.endsWith('.json'))) {
  const report = JSON.parse(readFileSync(join(dir, file), 'utf8'));
  const p = report.numPassedTests ?? 0;
  const f = (report.numFailedTests ?? 0) + (report.numFailedTestSuites ?? 0) - countSuitesWithFailedTests(report);
  const s = (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
  perPackage.push(`${file.replace(/\.json$/, '')}: ${p} passed, ${f} failed, ${s} skipped`);
  passed += p;
  failed += f;
  skipped += s;
}
// A suite that failed to load has no failed tests of its own; count it once.
function countSuitesWithFailedTests(report) {
  return (report.testResults ?? []).filter(
    (suite) => suite.status === 'failed' && (suite.assertionResults ?? []).some((t) => t.status === 'failed'),
  ).length;
}
for (const line of perPackage) console.log(`  ${line}`);
if (failedSteps.trim()) console.log(`failed steps: ${failedSteps.trim()}`);
console.log(`test: ${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 || passed === 0 || failedSteps.trim() ? 1 : 0);
