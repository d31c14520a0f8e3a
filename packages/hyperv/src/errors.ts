import { LabctlError } from '@labctl/core/errors';

/**
 * The Hyper-V failures a user can see (style point 9): one class each, messages built here.
 * Failures of single VMs inside a batch are not thrown: they are per-VM results and events.
 */
export class HyperVPlacementError extends LabctlError {
  constructor(vm: string) {
    super('HYPERV_NOT_PLACED', `no Hyper-V host was chosen for ${vm}`, {
      hint: 'Run preflight first, or name a host in labctl.yaml (hosts:) or with --uri.',
    });
  }
}

export class HyperVNoHostsError extends LabctlError {
  constructor() {
    super('HYPERV_NO_HOSTS', 'no Hyper-V host configured', {
      hint: 'Add `hosts: [{ name: hv01, address: admin@hv01.lab.example }]` to labctl.yaml (`address: local` when labctl runs on the Hyper-V host), or name one host: labctl create --host admin@hv01.',
      exitCode: 2,
    });
  }
}
