import { createServer as createTcpServer, type Server as TcpServer } from 'node:net';
import { Server, utils } from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sameKey, sshHandshakeProbe } from './ssh-probe.js';

/** A real SSH server (ssh2's) on 127.0.0.1 that rejects every login: the probe needs none. */
describe('sshHandshakeProbe against a real SSH server on 127.0.0.1', () => {
  const keys = utils.generateKeyPairSync('ed25519');
  const allowed = utils.generateKeyPairSync('ed25519');
  let server: Server;
  let port: number;
  let silent: TcpServer;
  let silentPort: number;
  let logins = 0;

  beforeAll(async () => {
    server = new Server({ hostKeys: [keys.private] }, (client) => {
      client.on('authentication', (ctx) => {
        if (ctx.method !== 'none') logins++;
        // The one key this server lets in (for the login stage); every other login is refused.
        if (
          ctx.method === 'publickey' &&
          ctx.username === 'lab' &&
          ctx.key.data.equals((utils.parseKey(allowed.public) as { getPublicSSH(): Buffer }).getPublicSSH())
        )
          return ctx.accept();
        ctx.reject();
      });
      client.on('ready', () => client.end());
      client.on('error', () => {});
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as { port: number }).port;
    // Accepts TCP but never speaks SSH (a VM whose sshd hangs).
    silent = createTcpServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    silentPort = (silent.address() as { port: number }).port;
  });

  afterAll(() => {
    server?.close();
    silent?.close();
  });

  it('completes the handshake and returns the host key as an OpenSSH line, without logging in', async () => {
    const result = await sshHandshakeProbe({ address: '127.0.0.1', port, pinnedKeys: [] }, 5_000);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.hostKey).toMatch(/^ssh-ed25519 AAAA\S+$/);
    expect(sameKey(result.hostKey, keys.public)).toBe(true);
    expect(logins).toBe(0);
  });

  it('accepts the pinned key and refuses any other', async () => {
    const pinned = await sshHandshakeProbe({ address: '127.0.0.1', port, pinnedKeys: [keys.public] }, 5_000);
    expect(pinned.ok).toBe(true);
    const other = utils.generateKeyPairSync('ed25519').public;
    const mismatch = await sshHandshakeProbe({ address: '127.0.0.1', port, pinnedKeys: [other] }, 5_000);
    expect(mismatch).toMatchObject({ ok: false, reason: 'key-mismatch' });
  });

  it('a closed port is "refused"; a silent one times out within its deadline', async () => {
    const closed = createTcpServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const closedPort = (closed.address() as { port: number }).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    expect(await sshHandshakeProbe({ address: '127.0.0.1', port: closedPort, pinnedKeys: [] }, 2_000)).toMatchObject({
      ok: false,
      reason: 'refused',
    });
    const started = Date.now();
    expect(await sshHandshakeProbe({ address: '127.0.0.1', port: silentPort, pinnedKeys: [] }, 500)).toMatchObject({
      ok: false,
      reason: 'timeout',
    });
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('with login: the lab key is accepted ("ok"); another key is "denied", and the handshake still counts', async () => {
    const ok = await sshHandshakeProbe(
      {
        address: '127.0.0.1',
        port,
        pinnedKeys: [keys.public],
        login: { user: 'lab', privateKey: Buffer.from(allowed.private) },
      },
      5_000,
    );
    expect(ok).toMatchObject({ ok: true, login: 'ok' });
    const other = utils.generateKeyPairSync('ed25519');
    const denied = await sshHandshakeProbe(
      {
        address: '127.0.0.1',
        port,
        pinnedKeys: [keys.public],
        login: { user: 'lab', privateKey: Buffer.from(other.private) },
      },
      5_000,
    );
    expect(denied).toMatchObject({ ok: true, login: 'denied' });
  });
});
