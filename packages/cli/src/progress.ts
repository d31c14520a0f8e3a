import type { EventSink, ProgressEvent } from '@labctl/core/events';
import { Listr } from 'listr2';
import { cellSafe, terminalSafe } from './render.js';

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
  /** Print the phase table even for fewer than two VMs. */
  summary?: boolean;
}

/** How a line says a phase began and ended: `web-01: making the disk`, `web-01: disk ready`. */
const PHRASES: Record<string, [begun: string, done: string]> = {
  disk: ['making the disk', 'disk ready'],
  define: ['defining', 'defined'],
  create: ['creating', 'created'],
  start: ['starting', 'started'],
  stop: ['stopping', 'stopped'],
  address: ['looking for an address', 'address found'],
  ssh: ['waiting for SSH', 'answers SSH'],
  destroy: ['destroying', 'destroyed'],
  copy: ['copying', 'copied'],
  export: ['exporting', 'exported'],
  import: ['importing', 'imported'],
  migrate: ['moving', 'moved'],
};

/** One event as a sentence: `web-01: disk ready (overlay on golden.vhd)`, `web-01: ssh FAILED: ...`. */
export function plainLine(event: ProgressEvent): string {
  const { subject, phase, message } = event;
  const [begun, done] = PHRASES[phase] ?? [phase, `${phase} done`];
  const detail = message ? ` (${message})` : '';
  switch (event.status) {
    case 'start':
      return `${subject}: ${begun}${detail}`;
    case 'done':
      return `${subject}: ${done}${detail}`;
    case 'failed':
      return `${subject}: ${phase} FAILED${message ? `: ${message}` : ''}`;
    case 'skipped':
      return `${subject}: ${phase} skipped${detail}`;
    case 'warning':
      return `${subject}: ${phase} warning: ${message ?? ''}`;
    default:
      return `${subject}: ${begun}${event.fraction !== undefined ? ` ${Math.round(event.fraction * 100)}%` : ''}${message ? ` ${message}` : ''}`;
  }
}

/**
 * How long each phase took, from the events: per phase the VMs that finished it, those that failed
 * it, the wall time from its first start to its last end, and the median time one VM spent in it.
 */
export class PhaseClock {
  private readonly started = new Map<string, number>();
  private readonly phases = new Map<
    string,
    { done: number; failed: number; first: number; last: number; each: number[] }
  >();

  constructor(private readonly now: () => number = Date.now) {}

  /** Each subject's previous event: a phase reported only when it ends (an address found) began there. */
  private readonly lastAt = new Map<string, number>();

  record(event: ProgressEvent): void {
    const at = event.at ?? this.now();
    const key = `${event.subject}\0${event.phase}`;
    const previous = this.lastAt.get(event.subject);
    this.lastAt.set(event.subject, at);
    const phase =
      this.phases.get(event.phase) ??
      this.phases.set(event.phase, { done: 0, failed: 0, first: at, last: at, each: [] }).get(event.phase)!;
    if (event.status === 'start') {
      if (!this.started.has(key)) this.started.set(key, at);
      phase.first = Math.min(phase.first, at);
      return;
    }
    if (event.status !== 'done' && event.status !== 'failed') return;
    phase[event.status]++;
    phase.last = Math.max(phase.last, at);
    const began = this.started.get(key) ?? previous;
    this.started.delete(key);
    if (began !== undefined) {
      phase.each.push(at - began);
      phase.first = Math.min(phase.first, began);
    }
  }

  /** The table, or undefined when no phase ended. */
  summary(): string | undefined {
    const rows = [...this.phases].filter(([, p]) => p.done + p.failed > 0);
    if (rows.length === 0) return undefined;
    const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
    const median = (values: number[]) => {
      const sorted = [...values].sort((a, b) => a - b);
      return sorted.length === 0 ? undefined : sorted[Math.floor((sorted.length - 1) / 2)]!;
    };
    const table = [
      ['phase', 'done', 'failed', 'took', 'per VM (median)'],
      ...rows.map(([name, p]) => {
        const each = median(p.each);
        return [
          name,
          String(p.done),
          String(p.failed),
          seconds(p.last - p.first),
          each === undefined ? '-' : seconds(each),
        ];
      }),
    ];
    const widths = table[0]!.map((_, column) => Math.max(...table.map((row) => row[column]!.length)));
    return table
      .map((row) =>
        row
          .map((cell, column) => cell.padEnd(widths[column]!))
          .join('  ')
          .trimEnd(),
      )
      .join('\n');
  }
}

export function createProgress(options: ProgressOptions): Progress {
  const stream = options.stream ?? process.stderr;
  if (options.json) return { sink: () => {}, stop: async () => {} };
  const tty = options.tty ?? (stream.isTTY === true && process.env.TERM !== 'dumb' && !process.env.CI);
  const clock = new PhaseClock();
  // The phase table ends the output of work on several VMs (one VM's lines already say it all).
  const printSummary = () => {
    const table = options.subjects.length > 1 || options.summary ? clock.summary() : undefined;
    if (table) stream.write(`\n${terminalSafe(table)}\n`);
  };
  if (!tty || options.subjects.length === 0) {
    return {
      sink: (event) => {
        clock.record(event);
        stream.write(`${cellSafe(plainLine(event))}\n`);
      },
      stop: async () => printSummary(),
    };
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
      clock.record(event);
      if (options.subjects.includes(event.subject)) handle(event);
      else stream.write(`${cellSafe(plainLine(event))}\n`);
    },
    stop: async () => {
      for (const line of lines.values()) line.finish();
      await running;
      printSummary();
    },
  };
}
