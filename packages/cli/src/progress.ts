import type { EventSink, ProgressEvent } from '@labctl/core/events';
import { Listr } from 'listr2';

/**
 * Live progress for commands that work on many VMs. On a TTY: a listr2 view with one line per VM
 * showing its current phase. Otherwise: one plain line per event on stderr (logs, CI). With --json:
 * nothing at all (stdout carries only the JSON result).
 */
export interface Progress {
  sink: EventSink;
  /** Ends the live view; VMs still open are shown as they are. */
  stop(): Promise<void>;
}

export interface ProgressOptions {
  json: boolean;
  /** VM names known up front (one live line each); other subjects print as plain lines. */
  subjects: readonly string[];
  /** Phase + status that finish a subject's line successfully. */
  finishedBy: (event: ProgressEvent) => boolean;
  tty?: boolean;
  stream?: NodeJS.WriteStream;
}

export function plainLine(event: ProgressEvent): string {
  return `${event.subject} ${event.phase} ${event.status}${event.message ? `: ${event.message}` : ''}`;
}

export function createProgress(options: ProgressOptions): Progress {
  const stream = options.stream ?? process.stderr;
  if (options.json) return { sink: () => {}, stop: async () => {} };
  const tty = options.tty ?? (stream.isTTY === true && process.env.TERM !== 'dumb' && !process.env.CI);
  if (!tty || options.subjects.length === 0) {
    return { sink: (event) => void stream.write(`${plainLine(event)}\n`), stop: async () => {} };
  }

  type Line = { update: (event: ProgressEvent) => void; finish: (error?: string) => void };
  const lines = new Map<string, Line>();
  const early = new Map<string, ProgressEvent[]>();
  const list = new Listr(
    options.subjects.map((subject) => ({
      title: subject,
      task: (_ctx: unknown, task: { title: string; output: string }) =>
        new Promise<void>((resolve, reject) => {
          lines.set(subject, {
            update: (event) => {
              task.title = `${subject}  ${event.phase}${event.message ? `: ${event.message}` : ''}`;
            },
            finish: (error) => (error ? reject(new Error(`${subject}: ${error}`)) : resolve()),
          });
          for (const event of early.get(subject) ?? []) handle(event);
        }),
    })),
    { concurrent: true, exitOnError: false, rendererOptions: { collapseErrors: false, showErrorMessage: true } },
  );
  const handle = (event: ProgressEvent) => {
    const line = lines.get(event.subject);
    if (!line) {
      if (options.subjects.includes(event.subject))
        early.set(event.subject, [...(early.get(event.subject) ?? []), event]);
      return;
    }
    line.update(event);
    if (event.status === 'failed') line.finish(`${event.phase}: ${event.message ?? 'failed'}`);
    else if (options.finishedBy(event)) line.finish();
  };
  const running = list.run().catch(() => {});
  return {
    sink: (event) => {
      if (options.subjects.includes(event.subject)) handle(event);
      else stream.write(`${plainLine(event)}\n`);
    },
    stop: async () => {
      for (const line of lines.values()) line.finish();
      await running;
    },
  };
}
