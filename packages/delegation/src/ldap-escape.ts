/**
 * Escaping for values that cross into LDAP: search filters (RFC 4515) and distinguished names
 * (RFC 4514). Host names are validated before they get here, but nothing relies on that.
 */

/** A value inside a filter assertion: `(sAMAccountName=${escapeFilterValue(name)})`. */
export function escapeFilterValue(value: string): string {
  let out = '';
  for (const byte of Buffer.from(value, 'utf8')) {
    // RFC 4515 requires escaping * ( ) \ NUL; non-ASCII bytes are escaped too so the filter stays plain ASCII.
    if (byte === 0x2a || byte === 0x28 || byte === 0x29 || byte === 0x5c || byte === 0x00 || byte >= 0x80) {
      out += `\\${byte.toString(16).padStart(2, '0')}`;
    } else {
      out += String.fromCharCode(byte);
    }
  }
  return out;
}

/** One attribute value of a DN component: `DC=${escapeDnValue(label)}`. */
export function escapeDnValue(value: string): string {
  let out = '';
  const chars = [...value];
  chars.forEach((ch, i) => {
    if (ch === '\0') out += '\\00';
    else if (',+"\\<>;='.includes(ch)) out += `\\${ch}`;
    else if (i === 0 && (ch === ' ' || ch === '#')) out += `\\${ch}`;
    else if (i === chars.length - 1 && ch === ' ') out += '\\ ';
    else out += ch;
  });
  return out;
}

/** `lab.example.com` -> `DC=lab,DC=example,DC=com`. */
export function baseDnFromDomain(domain: string): string {
  return domain
    .split('.')
    .filter((label) => label.length > 0)
    .map((label) => `DC=${escapeDnValue(label)}`)
    .join(',');
}
