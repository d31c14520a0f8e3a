import { isIP } from 'node:net';
import type { VarValue } from '@labctl/core/state';

/**
 * Python literals as Ansible's INI plugin reads them (`ast.literal_eval`, then "a string if that
 * fails"), and the reverse: a literal that reads back as exactly the given value. INI is the only
 * inventory format where values go through Python syntax, so both directions live here.
 */

/** Characters Python's `str.splitlines()` (which the INI plugin uses) or PyYAML would treat as line breaks or refuse. */
const UNSAFE_CHARS =
  /[\u007f-\u009f\u2028\u2029\ufeff\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/** A double-quoted string that is at once valid JSON, a valid Python str literal and a valid YAML double-quoted scalar. */
export function quoteString(value: string): string {
  return JSON.stringify(value).replace(UNSAFE_CHARS, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** A Python literal that `ast.literal_eval` turns back into `value`. */
export function pythonLiteral(value: VarValue): string {
  if (value === null) return 'None';
  if (value === true) return 'True';
  if (value === false) return 'False';
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : 'None';
  if (typeof value === 'string') return quoteString(value);
  if (Array.isArray(value)) return `[${value.map(pythonLiteral).join(', ')}]`;
  return `{${Object.entries(value)
    .map(([k, v]) => `${quoteString(k)}: ${pythonLiteral(v)}`)
    .join(', ')}}`;
}

const NOT_LITERAL = Symbol('not a literal');

class LiteralReader {
  private pos = 0;
  constructor(private readonly text: string) {}

  read(): VarValue | typeof NOT_LITERAL {
    try {
      this.skipSpace();
      const first = this.value();
      this.skipSpace();
      // `1, 2` (and `1,`) without brackets is a tuple in Python.
      const items = [first];
      let tuple = false;
      while (this.text[this.pos] === ',') {
        tuple = true;
        this.pos++;
        this.skipSpace();
        if (this.pos < this.text.length) items.push(this.value());
        this.skipSpace();
      }
      if (this.pos !== this.text.length) return NOT_LITERAL;
      return tuple ? items : first;
    } catch {
      return NOT_LITERAL;
    }
  }

  private skipSpace(): void {
    for (;;) {
      const ch = this.text[this.pos];
      if (ch === ' ' || ch === '\t' || ch === '\f' || ch === '\\') {
        // A backslash outside a string is only a line continuation in Python; here it is an error.
        if (ch === '\\') throw new Error('stray backslash');
        this.pos++;
      } else if (ch === '#') {
        this.pos = this.text.length;
      } else return;
    }
  }

  private expect(ch: string): void {
    this.skipSpace();
    if (this.text[this.pos] !== ch) throw new Error(`expected ${ch}`);
    this.pos++;
  }

  private value(): VarValue {
    this.skipSpace();
    const ch = this.text[this.pos];
    if (ch === '[') return this.sequence('[', ']');
    if (ch === '(') return this.sequence('(', ')');
    if (ch === '{') return this.mapping();
    if (ch === '+' || ch === '-') {
      this.pos++;
      const operand = this.value();
      if (typeof operand !== 'number') throw new Error('sign on a non-number');
      return ch === '-' ? -operand : operand;
    }
    const word = /^[A-Za-z_][A-Za-z0-9_]*/.exec(this.text.slice(this.pos))?.[0];
    if (word !== undefined) {
      const prefix =
        /^[rRuUbB]{1,2}$/.test(word) &&
        (this.text[this.pos + word.length] === '"' || this.text[this.pos + word.length] === "'");
      if (prefix) {
        this.pos += word.length;
        return this.strings(word.toLowerCase().includes('r'));
      }
      this.pos += word.length;
      if (word === 'True') return true;
      if (word === 'False') return false;
      if (word === 'None') return null;
      throw new Error('a name');
    }
    if (ch === '"' || ch === "'") return this.strings(false);
    return this.number();
  }

  private sequence(open: string, close: string): VarValue {
    this.expect(open);
    const items: VarValue[] = [];
    this.skipSpace();
    let sawComma = false;
    while (this.text[this.pos] !== close) {
      items.push(this.value());
      this.skipSpace();
      sawComma = false;
      if (this.text[this.pos] === ',') {
        this.pos++;
        sawComma = true;
        this.skipSpace();
      } else if (this.text[this.pos] !== close) throw new Error('expected ,');
    }
    this.pos++;
    // `(1)` is just 1 in Python; `(1,)` is a tuple.
    if (open === '(' && items.length === 1 && !sawComma) return items[0] as VarValue;
    return items;
  }

  private mapping(): VarValue {
    this.expect('{');
    const result: Record<string, VarValue> = {};
    this.skipSpace();
    while (this.text[this.pos] !== '}') {
      const key = this.value();
      this.expect(':');
      const value = this.value();
      if (typeof key === 'object' && key !== null) throw new Error('unhashable key');
      result[key === null ? 'None' : typeof key === 'boolean' ? (key ? 'True' : 'False') : String(key)] = value;
      this.skipSpace();
      if (this.text[this.pos] === ',') {
        this.pos++;
        this.skipSpace();
      } else if (this.text[this.pos] !== '}') throw new Error('expected ,');
    }
    this.pos++;
    return result;
  }

  /** One or more adjacent string literals ("a" 'b' is "ab" in Python). */
  private strings(raw: boolean): string {
    let result = this.string(raw);
    for (;;) {
      const save = this.pos;
      this.skipSpace();
      const word = /^[rRuU]{0,2}(?=["'])/.exec(this.text.slice(this.pos))?.[0];
      if (word === undefined) {
        this.pos = save;
        return result;
      }
      this.pos += word.length;
      result += this.string(word.toLowerCase().includes('r'));
    }
  }

  private string(raw: boolean): string {
    const quote = this.text[this.pos] as string;
    const triple = this.text.startsWith(quote.repeat(3), this.pos);
    const end = triple ? quote.repeat(3) : quote;
    this.pos += end.length;
    let out = '';
    for (;;) {
      if (this.pos >= this.text.length) throw new Error('unterminated string');
      if (this.text.startsWith(end, this.pos)) {
        this.pos += end.length;
        return out;
      }
      const ch = this.text[this.pos] as string;
      if ((ch === '\n' || ch === '\r') && !triple) throw new Error('newline in string');
      if (ch !== '\\') {
        out += ch;
        this.pos++;
        continue;
      }
      const next = this.text[this.pos + 1];
      if (next === undefined) throw new Error('unterminated string');
      if (raw) {
        out += ch + next;
        this.pos += 2;
        continue;
      }
      this.pos += 2;
      const simple: Record<string, string> = {
        n: '\n',
        t: '\t',
        r: '\r',
        '\\': '\\',
        "'": "'",
        '"': '"',
        a: '\x07',
        b: '\b',
        f: '\f',
        v: '\v',
        '\n': '',
      };
      if (next in simple) out += simple[next];
      else if (next === 'x' || next === 'u' || next === 'U') {
        const len = { x: 2, u: 4, U: 8 }[next];
        const hex = this.text.slice(this.pos, this.pos + len);
        if (!/^[0-9a-fA-F]+$/.test(hex) || hex.length !== len) throw new Error('bad escape');
        out += String.fromCodePoint(Number.parseInt(hex, 16));
        this.pos += len;
      } else if (/[0-7]/.test(next)) {
        const octal = /^[0-7]{1,3}/.exec(this.text.slice(this.pos - 1))?.[0] ?? next;
        out += String.fromCharCode(Number.parseInt(octal, 8));
        this.pos += octal.length - 1;
      } else if (next === 'N') throw new Error('named escapes are not supported');
      else out += `\\${next}`;
    }
  }

  private number(): number {
    const rest = this.text.slice(this.pos);
    const match =
      /^0[xX](?:_?[0-9a-fA-F])+|^0[oO](?:_?[0-7])+|^0[bB](?:_?[01])+|^(?:\d(?:_?\d)*)?\.?(?:\d(?:_?\d)*)?(?:[eE][+-]?\d(?:_?\d)*)?/.exec(
        rest,
      )?.[0] ?? '';
    if (!/\d/.test(match)) throw new Error('not a number');
    const after = rest[match.length];
    if (after !== undefined && /[A-Za-z0-9_.]/.test(after)) throw new Error('not a number');
    const clean = match.replaceAll('_', '');
    let value: number;
    if (/^0[xX]/.test(clean)) value = Number.parseInt(clean.slice(2), 16);
    else if (/^0[oO]/.test(clean)) value = Number.parseInt(clean.slice(2), 8);
    else if (/^0[bB]/.test(clean)) value = Number.parseInt(clean.slice(2), 2);
    else {
      // Python refuses decimal integers with leading zeros ("010"), but not "0" or "00".
      if (/^0\d/.test(clean) && /^\d+$/.test(clean) && !/^0+$/.test(clean)) throw new Error('leading zero');
      value = Number(clean);
    }
    if (Number.isNaN(value)) throw new Error('not a number');
    this.pos += match.length;
    return value;
  }
}

/** What Ansible's INI plugin makes of a value: the Python literal's value, or the text itself. */
export function iniValue(text: string): VarValue {
  const value = new LiteralReader(text).read();
  return value === NOT_LITERAL ? text : value;
}

/** Strings safe to write bare in INI: no shell-like quoting needed and not read back as a number, bool or None. */
export function isBareIniString(value: string): boolean {
  if (!/^[A-Za-z0-9_./:@%+,-]+$/.test(value)) return false;
  // Fast path: a name-like start without a comma is never a Python literal, except these three.
  if (/^[A-Za-z_][^,]*$/.test(value)) return value !== 'True' && value !== 'False' && value !== 'None';
  // An IP address is never a Python literal (dots or colons make it a syntax error).
  if (isIP(value)) return true;
  return iniValue(value) === value;
}

/**
 * Python's `shlex.split(line, comments=True)` in POSIX mode, which the INI plugin uses for host lines:
 * single quotes are literal, double quotes allow \" and \\, a backslash outside quotes escapes any
 * character, and an unquoted `#` starts a comment.
 */
export function shlexSplit(line: string): string[] {
  const tokens: string[] = [];
  let token = '';
  let inToken = false;
  let i = 0;
  while (i < line.length) {
    const ch = line[i] as string;
    if (/\s/.test(ch)) {
      if (inToken) tokens.push(token);
      token = '';
      inToken = false;
      i++;
    } else if (ch === '#') {
      break;
    } else if (ch === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) throw new Error('No closing quotation');
      token += line.slice(i + 1, end);
      inToken = true;
      i = end + 1;
    } else if (ch === '"') {
      i++;
      inToken = true;
      for (;;) {
        if (i >= line.length) throw new Error('No closing quotation');
        const c = line[i] as string;
        if (c === '"') {
          i++;
          break;
        }
        if (c === '\\' && (line[i + 1] === '"' || line[i + 1] === '\\')) {
          token += line[i + 1];
          i += 2;
        } else {
          token += c;
          i++;
        }
      }
    } else if (ch === '\\') {
      if (i + 1 >= line.length) throw new Error('No escaped character');
      token += line[i + 1];
      inToken = true;
      i += 2;
    } else {
      token += ch;
      inToken = true;
      i++;
    }
  }
  if (inToken) tokens.push(token);
  return tokens;
}

/** One shell-like word for shlex: bare when safe, otherwise in single quotes. */
export function shlexQuote(value: string): string {
  if (/^[A-Za-z0-9_./:@%+,=-]+$/.test(value)) return value;
  return `'${value.replaceAll("'", `'"'"'`)}'`;
}
