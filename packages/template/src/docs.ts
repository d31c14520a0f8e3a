import { builtinProfileNames, loadProfile, type Profile } from './catalog.js';

/**
 * docs/template-steps.md, generated from the catalog (like virt-sysprep's --dump-pod): the test in
 * docs.test.ts fails when the page and the catalog differ. Regenerate with
 * `LABCTL_UPDATE_DOCS=1 npx vitest run src/docs.test.ts` in packages/template.
 */
export function renderProfileMarkdown(profile: Profile): string {
  const lines = [
    `## ${profile.name}`,
    '',
    profile.description ? `${profile.description}.` : '',
    '',
    profile.distributions.length > 0
      ? `For: ${profile.distributions.map((d) => `\`${d}\``).join(', ')}.`
      : 'A fragment other profiles extend.',
    '',
    '| step | phase | default | what it does |',
    '| --- | --- | --- | --- |',
    ...profile.steps.map(
      (step) =>
        `| \`${step.id}\` | ${step.phase} | ${step.default ? 'on' : 'off'} | ${step.description}${step.notes ? `. ${step.notes}` : ''} |`,
    ),
    '',
  ];
  return lines.join('\n');
}

export function renderStepsMarkdown(): string {
  const header = [
    '# Template prep steps',
    '',
    '<!-- Generated from templates/*.yaml by packages/template/src/docs.ts; do not edit by hand. -->',
    '',
    '`labctl template prep --target user@host` runs each selected step of a profile over SSH: the',
    "step's check first (exit 0: already done, 1: needs work), then its apply, then the check again.",
    'Select with `--step ID` (also `defaults`, `all`, comma lists) and `--skip ID`; `seal` runs only with',
    '`--seal`. `labctl template script` prints the same steps as one bash script. Your own profile is a',
    'YAML file with `extends: [centos7]` and `steps:` that replace (same id) or add steps.',
    '',
  ];
  return [...header, ...builtinProfileNames().map((name) => renderProfileMarkdown(loadProfile(name)))].join('\n');
}
