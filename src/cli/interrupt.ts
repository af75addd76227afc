import os from 'node:os';

/** The signal that aborted each withInterrupt signal (the abort reason stays the standard AbortError). */
const received = new WeakMap<AbortSignal, NodeJS.Signals>();

/** The exit status a process stopped by `signal` reports by convention: 128 + its number (SIGINT 130, SIGTERM 143). */
export function signalExitCode(signal: NodeJS.Signals): number {
  return 128 + (os.constants.signals[signal] ?? 2);
}

/**
 * The exit status for a job that `withInterrupt` stopped: 128 + the number of the signal received (130 for Ctrl-C,
 * 143 for SIGTERM); 130 when the signal was aborted otherwise.
 */
export function interruptExitCode(signal: AbortSignal): number {
  return signalExitCode(received.get(signal) ?? 'SIGINT');
}

/**
 * Runs a long job with an AbortSignal that SIGINT / SIGTERM trigger: the job finishes its current step, writes what
 * it must (a resumable checkpoint) and returns (exit with `interruptExitCode(signal)`). A second signal exits at
 * once, with that signal's code.
 */
export async function withInterrupt<T>(job: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  let count = 0;
  const onSignal = (sig: NodeJS.Signals): void => {
    count++;
    if (count > 1) {
      process.stderr.write(`\n${sig} again: exiting now\n`);
      process.exit(signalExitCode(sig));
    }
    process.stderr.write(`\n${sig}: stopping after the current step (press Ctrl-C again to exit now)\n`);
    received.set(controller.signal, sig);
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    return await job(controller.signal);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
