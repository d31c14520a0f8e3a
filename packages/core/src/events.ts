/**
 * Progress events. Libraries never print: they call an `EventSink` with typed events and the CLI
 * renders them (a live view on a TTY, one line per event otherwise, nothing with --json).
 */
export type ProgressStatus = 'start' | 'progress' | 'done' | 'skipped' | 'failed' | 'warning';

export interface ProgressEvent {
  /** What the work is about: a VM name, a host, a file. */
  subject: string;
  /** The phase of the work: "disk", "define", "start", "address", "ssh", "apply" ... */
  phase: string;
  status: ProgressStatus;
  message?: string;
  /** 0..1 when the work has a measurable size. */
  fraction?: number;
  at?: number;
}

export type EventSink = (event: ProgressEvent) => void;

export const silentSink: EventSink = () => {};

/** Collects events in memory: for tests and for `--json` summaries. */
export function collectingSink(): EventSink & { events: ProgressEvent[] } {
  const events: ProgressEvent[] = [];
  const sink = ((event: ProgressEvent) => {
    events.push({ ...event, at: event.at ?? Date.now() });
  }) as EventSink & { events: ProgressEvent[] };
  sink.events = events;
  return sink;
}
