import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateHostKey, type HostKeyType } from './keys.js';

const hasDropbear = (() => {
  try {
    execFileSync('dropbearconvert', [], { stdio: 'ignore' });
    return true;
  } catch (err) {
    return (err as { code?: string }).code !== 'ENOENT';
  }
})();

describe('host keys labctl makes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'labctl-keys-'));
  for (const type of ['ed25519', 'rsa'] as HostKeyType[]) {
    it(`${type}: OpenSSH's ssh-keygen reads the private key and derives the same public key`, () => {
      const key = generateHostKey(type, 'web-01');
      const file = join(dir, `key_${type}`);
      writeFileSync(file, key.privateKey, { mode: 0o600 });
      const derived = execFileSync('ssh-keygen', ['-y', '-f', file], { encoding: 'utf8' }).trim().split(' ');
      expect(`${derived[0]} ${derived[1]}`).toBe(key.publicKey);
      expect(key.publicKey.startsWith(type === 'rsa' ? 'ssh-rsa ' : 'ssh-ed25519 ')).toBe(true);
    });
    it.skipIf(!hasDropbear && !process.env.CI)(
      `${type}: dropbearconvert turns it into dropbear's format with the same public key`,
      () => {
        const key = generateHostKey(type);
        const file = join(dir, `db_${type}`);
        writeFileSync(file, key.privateKey, { mode: 0o600 });
        execFileSync('dropbearconvert', ['openssh', 'dropbear', file, `${file}.dropbear`], { stdio: 'ignore' });
        const line = execFileSync('dropbearkey', ['-y', '-f', `${file}.dropbear`], { encoding: 'utf8' })
          .split('\n')
          .find((l) => l.startsWith('ssh-'))!
          .split(' ');
        expect(`${line[0]} ${line[1]}`).toBe(key.publicKey);
      },
    );
  }
  it('two keys are never the same', () => {
    expect(generateHostKey('ed25519').publicKey).not.toBe(generateHostKey('ed25519').publicKey);
  });
});
