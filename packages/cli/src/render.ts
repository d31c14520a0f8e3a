/** Plain text tables for human output: columns padded to the widest cell, no colours when not a TTY. */
export interface Column<R> {
  header: string;
  get: (row: R) => string | number | undefined | null;
}

export function renderTable<R>(rows: readonly R[], columns: readonly Column<R>[]): string {
  const cells = rows.map((row) => columns.map((column) => String(column.get(row) ?? '-')));
  const widths = columns.map((column, i) => Math.max(column.header.length, ...cells.map((line) => line[i]!.length)));
  const format = (line: readonly string[]) =>
    line
      .map((cell, i) => (i === line.length - 1 ? cell : cell.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [format(columns.map((column) => column.header.toUpperCase())), ...cells.map(format)].join('\n');
}
