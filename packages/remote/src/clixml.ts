/**
 * CLIXML on stderr: what powershell.exe writes there when it runs an encoded command with stderr
 * redirected (always the case over SSH). Only the error and warning streams are kept; progress
 * ("Preparing modules for first use."), verbose, debug and information records are noise. Decoding
 * follows Ansible's `_parse_clixml`: `_xHHHH_` escapes are UTF-16 code units.
 */
export interface ClixmlStreams {
  /** Error records, one string per record (the formatted lines joined back together). */
  errors: string[];
  warnings: string[];
  /** Lines of stderr that were not CLIXML at all (plain text next to the header). */
  plain: string[];
}

const OBJS_RE = /<Objs\b[^>]*>([\s\S]*?)<\/Objs>/g;
const STRING_RE = /<S S="(Error|warning|verbose|debug)">([\s\S]*?)<\/S>/g;

export function decodeClixmlEscapes(text: string): string {
  const units = text.replace(/_x([0-9A-Fa-f]{4})_/g, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
  return units
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&amp;/g, '&');
}

/** Strips ANSI colour sequences that pwsh 7 puts into error text. */
function stripAnsi(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI escapes are control characters
  return text.replace(/\u001b\[[0-9;]*m/g, '');
}

export function isClixml(stderr: string): boolean {
  return /(^|\n)#< CLIXML/.test(stderr.replace(/^\uFEFF/, ''));
}

export function parseClixml(stderr: string): ClixmlStreams {
  const result: ClixmlStreams = { errors: [], warnings: [], plain: [] };
  const text = stderr.replace(/^\uFEFF/, '');
  let rest = text;
  for (const objs of text.matchAll(OBJS_RE)) {
    rest = rest.replace(objs[0], '\n');
    // One <S S="Error"> per formatted line; consecutive error lines belong to one record until
    // the record's FullyQualifiedErrorId line closes it.
    let current: string[] = [];
    const flush = () => {
      const joined = current.join('').replace(/\r?\n$/, '');
      if (joined.trim()) result.errors.push(joined);
      current = [];
    };
    for (const match of (objs[1] ?? '').matchAll(STRING_RE)) {
      const stream = match[1];
      const value = stripAnsi(decodeClixmlEscapes(match[2] ?? ''));
      if (stream === 'Error') {
        current.push(value);
        if (/FullyQualifiedErrorId/.test(value)) flush();
      } else if (stream === 'warning') {
        result.warnings.push(value.replace(/\r?\n$/, ''));
      }
    }
    flush();
  }
  for (const line of rest.split(/\r?\n/)) {
    const trimmed = line.trim();
    if (trimmed && trimmed !== '#< CLIXML') result.plain.push(trimmed);
  }
  return result;
}

/**
 * The first line of each error record is its message; the rest ("At line:1 char:1", "+ CategoryInfo")
 * is position information. Returns one readable line per record plus the FullyQualifiedErrorId.
 */
export function summarizeClixmlErrors(
  stderr: string,
): Array<{ message: string; fullyQualifiedErrorId?: string; category?: string }> {
  if (!isClixml(stderr)) {
    const plain = stderr.trim();
    return plain ? [{ message: plain.split(/\r?\n/)[0] ?? plain }] : [];
  }
  const records = parseClixml(stderr).errors;
  // sshd with DefaultShell set to Windows PowerShell runs labctl's command line inside it, and that
  // outer shell writes the inner powershell.exe's stderr lines (CLIXML already) as its own error
  // records: decode the inner document.
  const joined = records.join('\n');
  const inner = joined.indexOf('#< CLIXML');
  if (inner >= 0 && /<Objs\b/.test(joined.slice(inner))) return summarizeClixmlErrors(joined.slice(inner));
  return records.map((record) => {
    const lines = record.split(/\r?\n/).map((line) => line.trim());
    const concise = conciseViewError(lines);
    if (concise) return concise;
    const fqid = lines
      .find((line) => line.startsWith('+ FullyQualifiedErrorId'))
      ?.replace(/^\+ FullyQualifiedErrorId\s*:\s*/, '');
    const category = lines.find((line) => line.startsWith('+ CategoryInfo'))?.replace(/^\+ CategoryInfo\s*:\s*/, '');
    const messageLines: string[] = [];
    for (const line of lines) {
      if (/^At line:\d+ char:\d+/.test(line) || /^At .*:\d+ char:\d+/.test(line) || line.startsWith('+ ')) break;
      if (line) messageLines.push(line);
    }
    return {
      message: messageLines.join(' ') || (lines[0] ?? ''),
      ...(fqid ? { fullyQualifiedErrorId: fqid } : {}),
      ...(category ? { category } : {}),
    };
  });
}

/**
 * PowerShell 7's ConciseView (its default error view): `Category: ` on the first line, then
 * `Line |`, the numbered source line, the `~~~` marker and the message on `|` lines. Windows
 * PowerShell 5.1 prints NormalView (message, "At line:", "+ CategoryInfo", "+ FullyQualifiedErrorId").
 */
function conciseViewError(lines: string[]): { message: string; category?: string } | undefined {
  const at = lines.indexOf('Line |');
  if (at < 0) return undefined;
  const category = lines[0]?.replace(/:\s*$/, '').trim();
  const message = lines
    .slice(at + 1)
    .filter((line) => line.startsWith('|'))
    .map((line) => line.slice(1).trim())
    .filter((line) => line && !/^~+$/.test(line))
    .join(' ');
  return { message, ...(category ? { category } : {}) };
}
