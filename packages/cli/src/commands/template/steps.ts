import { loadProfile, type Phase } from '@labctl/template/catalog';
import { Flags } from '@oclif/core';
import { LabctlCommand } from '../../base-command.js';
import { renderTable } from '../../render.js';

export interface TemplateStepsResult {
  profile: string;
  description: string;
  distributions: string[];
  files: string[];
  steps: Array<{ id: string; phase: Phase; default: boolean; description: string; notes?: string }>;
}

/** --step / --skip, with the built-in CentOS 7 step ids in their help (generated from the catalog). */
function centos7StepIds(): string {
  try {
    return loadProfile('centos7')
      .steps.map((s) => s.id)
      .join(', ');
  } catch {
    return 'see labctl template steps';
  }
}
export const stepFlags = {
  step: Flags.string({
    summary: 'Only these steps (ids, comma lists, `defaults`, `all`).',
    description: `centos7 steps: ${centos7StepIds()}.`,
    multiple: true,
  }),
  skip: Flags.string({ summary: 'Leave these steps out (ids or comma lists).', multiple: true }),
};

export const profileFlag = Flags.string({
  char: 'p',
  summary: 'Step profile: a built-in name (centos7, debian) or a path to your own YAML profile.',
  default: 'centos7',
  env: 'LABCTL_TEMPLATE_PROFILE',
});

export default class TemplateSteps extends LabctlCommand<typeof TemplateSteps> {
  static override summary = 'List the prep steps of a template profile.';
  static override description =
    'Steps come from templates/<profile>.yaml (validated on load); your own profile file can extend a built-in one. ' +
    'Steps marked off run only when named with --step (seal: with --seal). docs/template-steps.md is generated from the same catalog.';
  static override examples = [
    { description: 'The CentOS 7 steps', command: '<%= config.bin %> <%= command.id %>' },
    {
      description: 'Your own profile, as JSON',
      command: '<%= config.bin %> <%= command.id %> --profile ./my-template.yaml --json',
    },
  ];
  static override flags = { profile: profileFlag };

  async run(): Promise<TemplateStepsResult> {
    const profile = loadProfile(this.flags.profile);
    const steps = profile.steps.map(({ id, phase, default: on, description, notes }) => ({
      id,
      phase,
      default: on,
      description,
      ...(notes ? { notes } : {}),
    }));
    this.log(`${profile.name}: ${profile.description} (for ${profile.distributions.join(', ') || 'any distribution'})`);
    this.log(
      renderTable(steps, [
        { header: 'step', get: (s) => s.id },
        { header: 'phase', get: (s) => s.phase },
        { header: 'default', get: (s) => (s.default ? 'on' : 'off') },
        { header: 'what it does', get: (s) => s.description },
      ]),
    );
    return {
      profile: profile.name,
      description: profile.description,
      distributions: profile.distributions,
      files: profile.files,
      steps,
    };
  }
}
