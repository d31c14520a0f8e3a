import { setMaxListeners } from 'node:events';

/**
 * Ctrl-C for long commands: the first SIGINT aborts the signal (work in flight finishes, the state is
 * saved, the command reports what it did); a second one exits at once with status 130.
 */
export function interruptOnSigint(note: (message: string) => void): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  // Every child process and wait in flight listens to this one signal (10 VMs at once is already more
  // than Node's default of 10): many listeners are the design here, not a leak.
  setMaxListeners(0, controller.signal);
  const onSigint = () => {
    if (controller.signal.aborted) process.exit(130);
    note('interrupt: finishing the VMs in flight and saving the state (Ctrl-C again to quit at once)');
    controller.abort(new Error('interrupted'));
  };
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigint);
  return {
    signal: controller.signal,
    dispose: () => {
      process.removeListener('SIGINT', onSigint);
      process.removeListener('SIGTERM', onSigint);
    },
  };
}
