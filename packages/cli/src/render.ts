/** Plain text tables for human output: columns padded to the widest cell, no colours when not a TTY. */
export interface Column<R> {
  header: string;
  get: (row: R) => string | number | undefined | null;
}

// C0 and C1 control characters (ESC starts the sequences that move the cursor, set the title or
// rewrite the clipboard), DEL, and the bidirectional overrides that reorder what a reader sees.
const UNSAFE_IN_LINE = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
const UNSAFE_IN_TEXT = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

function escapeChar(c: string): string {
  const code = c.charCodeAt(0);
  if (c === '\n') return '\\n';
  if (c === '\t') return '\\t';
  if (c === '\r') return '\\r';
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

/**
 * Text for the terminal: values from state, lab files and hypervisors may carry escape sequences;
 * they are shown escaped (`\x1b`), never sent. Newlines and tabs of labctl's own multi-line text stay.
 */
export function terminalSafe(text: string): string {
  return text.replace(UNSAFE_IN_TEXT, escapeChar);
}

/** One table cell or one-line value: newlines are escaped too, so a value cannot forge table rows. */
export function cellSafe(text: string): string {
  return text.replace(UNSAFE_IN_LINE, escapeChar);
}

export function renderTable<R>(rows: readonly R[], columns: readonly Column<R>[]): string {
  const cells = rows.map((row) => columns.map((column) => cellSafe(String(column.get(row) ?? '-'))));
  // A loop, not Math.max(...cells): spreading 125,000 rows overflows the call stack.
  const widths = columns.map((column) => column.header.length);
  for (const line of cells)
    for (let i = 0; i < line.length; i++) if (line[i]!.length > widths[i]!) widths[i] = line[i]!.length;
  const format = (line: readonly string[]) =>
    line
      .map((cell, i) => (i === line.length - 1 ? cell : cell.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [format(columns.map((column) => column.header.toUpperCase())), ...cells.map(format)].join('\n');
}

/**
 * Help text written as source lines, given to oclif as paragraphs: lines of one paragraph are
 * joined with spaces so oclif wraps them to the terminal's width; an empty line starts a new
 * paragraph; a line starting with `-` or `$` stays a line of its own (lists, commands).
 */
export function prose(lines: readonly string[]): string {
  let out = '';
  for (const line of lines) {
    if (line === '') out += '\n\n';
    else if (out === '' || out.endsWith('\n')) out += line;
    else if (/^\s*[-$]/.test(line)) out += `\n${line}`;
    else out += ` ${line}`;
  }
  return out;
}
