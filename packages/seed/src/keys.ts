import { generateKeyPairSync, type KeyObject, randomBytes } from 'node:crypto';

/**
 * SSH host keys made by labctl before a VM exists, so the key can be pinned before the VM boots.
 * The private half is written only into the VM's seed (OpenSSH's own format, which sshd and
 * cloud-init's `ssh_keys` take, and dropbearconvert turns into dropbear's); the public half is an
 * OpenSSH public-key line, the form the state file and known_hosts keep.
 */
export type HostKeyType = 'ed25519' | 'rsa';

export interface HostKeyPair {
  type: HostKeyType;
  /** "ssh-ed25519 AAAA..." (no comment). */
  publicKey: string;
  /** "-----BEGIN OPENSSH PRIVATE KEY-----..." (unencrypted: sshd reads it at boot). */
  privateKey: string;
}

const RSA_BITS = 3072;

export function generateHostKey(type: HostKeyType, comment = ''): HostKeyPair {
  if (type === 'ed25519') {
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    const pub = jwkBytes(publicKey, 'x');
    const seed = jwkBytes(privateKey, 'd');
    const blob = Buffer.concat([sshString('ssh-ed25519'), sshString(pub)]);
    // OpenSSH keeps the 32-byte seed followed by the public key as the ed25519 "private key".
    const secret = Buffer.concat([blob, sshString(Buffer.concat([seed, pub]))]);
    return { type, publicKey: keyLine(blob), privateKey: openSshPrivateKey(blob, secret, comment) };
  }
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: RSA_BITS, publicExponent: 0x10001 });
  const [n, e, d, p, q, qi] = (['n', 'e', 'd', 'p', 'q', 'qi'] as const).map((field) =>
    mpint(jwkBytes(privateKey, field)),
  ) as [Buffer, Buffer, Buffer, Buffer, Buffer, Buffer];
  const blob = Buffer.concat([sshString('ssh-rsa'), e, n]);
  // OpenSSH's RSA private key order: n, e, d, iqmp, p, q.
  const secret = Buffer.concat([sshString('ssh-rsa'), n, e, d, qi, p, q]);
  return { type, publicKey: keyLine(blob), privateKey: openSshPrivateKey(blob, secret, comment) };
}

function keyLine(blob: Buffer): string {
  const type = blob.subarray(4, 4 + blob.readUInt32BE(0)).toString('ascii');
  return `${type} ${blob.toString('base64')}`;
}

function jwkBytes(key: KeyObject, field: 'x' | 'd' | 'n' | 'e' | 'p' | 'q' | 'qi'): Buffer {
  const value = (key.export({ format: 'jwk' }) as Record<string, string | undefined>)[field];
  if (!value) throw new Error(`key has no ${field}`);
  return Buffer.from(value, 'base64url');
}

function sshString(value: string | Buffer): Buffer {
  const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  const length = Buffer.alloc(4);
  length.writeUInt32BE(bytes.length);
  return Buffer.concat([length, bytes]);
}

/** An SSH mpint: big-endian, no leading zeros, a zero byte first when the top bit is set. */
function mpint(bytes: Buffer): Buffer {
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  const trimmed = bytes.subarray(start);
  return sshString((trimmed[0] ?? 0) & 0x80 ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed);
}

/** The "openssh-key-v1" container (PROTOCOL.key), unencrypted. */
function openSshPrivateKey(publicBlob: Buffer, secret: Buffer, comment: string): string {
  const check = randomBytes(4);
  let body = Buffer.concat([check, check, secret, sshString(comment)]);
  const padding = (8 - (body.length % 8)) % 8;
  body = Buffer.concat([body, Buffer.from(Array.from({ length: padding }, (_, i) => i + 1))]);
  const whole = Buffer.concat([
    Buffer.from('openssh-key-v1\0', 'latin1'),
    sshString('none'),
    sshString('none'),
    sshString(''),
    Buffer.from([0, 0, 0, 1]),
    sshString(publicBlob),
    sshString(body),
  ]);
  const lines = whole.toString('base64').match(/.{1,70}/g) ?? [];
  return `-----BEGIN OPENSSH PRIVATE KEY-----\n${lines.join('\n')}\n-----END OPENSSH PRIVATE KEY-----\n`;
}
