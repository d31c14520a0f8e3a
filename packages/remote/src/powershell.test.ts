import { describe, expect, it } from 'vitest';
import {
  BOOTSTRAP,
  bootstrapCommandLine,
  bootstrapStdin,
  type CommandRunner,
  decodeBootstrapStdin,
  decodePowerShellCommand,
  extractEnvelope,
  PowerShellHostError,
  PowerShellScriptError,
  PowerShellSession,
  PowerShellTransportError,
  type ScriptRunLog,
} from './powershell.js';

const NASTY = `it's "q" $(Remove-Item C:\\ -Recurse) \`n; # ${'\n'}Ünïcødé 😀 ' ; exit 1`;

describe('encoded bootstrap', () => {
  it('is the same short command line whatever the script size (cmd.exe stops at 8191 characters)', () => {
    const line = bootstrapCommandLine();
    expect(line).toMatch(/^powershell\.exe -NoProfile -NonInteractive -EncodedCommand [A-Za-z0-9+/=]+$/);
    expect(line.length).toBeLessThan(2000);
    expect(decodePowerShellCommand(line.split(' ').pop() ?? '')).toBe(BOOTSTRAP);
    expect(bootstrapCommandLine('pwsh')).toMatch(/^pwsh -NoProfile -NonInteractive -EncodedCommand /);
  });

  it('carries script and input on stdin in short lines, round-tripping any text', () => {
    const script = `# labctl-script: x\n${'Write-Output 1\n'.repeat(2000)}`;
    const input = JSON.stringify({ name: NASTY });
    const stdin = bootstrapStdin(script, input);
    expect(Math.max(...stdin.split('\n').map((line) => line.length))).toBeLessThanOrEqual(76);
    expect(decodeBootstrapStdin(stdin)).toEqual({ script, inputJson: input });
  });
});

describe('result envelope', () => {
  it('reads only what lies between the markers (BOM, CRLF, noise around it)', () => {
    const stdout = `\uFEFFnoise\r\n<<<LABCTL-JSON\r\n{"ok":true,"data":{"a":"it\\u0027s"}}\r\nLABCTL-JSON>>>\r\nmore noise`;
    expect(extractEnvelope(stdout)).toEqual({ ok: true, data: { a: "it's" } });
    expect(extractEnvelope('no markers here')).toBeUndefined();
  });
});

function runner(
  result: { stdout?: string; stderr?: string; code: number | null } | Error,
): CommandRunner & { calls: Array<{ command: string; stdin?: string }> } {
  const calls: Array<{ command: string; stdin?: string }> = [];
  return {
    calls,
    async exec(command, options) {
      calls.push({ command, ...(options?.stdin === undefined ? {} : { stdin: options.stdin }) });
      if (result instanceof Error) throw result;
      return { stdout: result.stdout ?? '', stderr: result.stderr ?? '', code: result.code };
    },
  };
}

describe('PowerShellSession', () => {
  const script = { name: 'list_vms', text: '# labctl-script: list_vms\nparam([string]$InputJson)' };

  it('returns the data, logs script/host/duration/exit, and the script text only with debug', async () => {
    const logs: ScriptRunLog[] = [];
    const plain = new PowerShellSession(
      runner({ stdout: '<<<LABCTL-JSON\n{"ok":true,"data":[1]}\nLABCTL-JSON>>>\n', code: 0 }),
      {
        host: 'hv01',
        log: (entry) => logs.push(entry),
      },
    );
    expect(await plain.run(script, { lab: NASTY })).toEqual([1]);
    expect(logs[0]).toMatchObject({ script: 'list_vms', host: 'hv01', exit: 0, ok: true });
    expect(logs[0]?.scriptText).toBeUndefined();
    const debug = new PowerShellSession(runner({ stdout: '<<<LABCTL-JSON\n{"ok":true}\nLABCTL-JSON>>>', code: 0 }), {
      host: 'hv01',
      debug: true,
      log: (entry) => logs.push(entry),
    });
    await debug.run(script, { lab: 'x' });
    expect(logs[1]?.scriptText).toBe(script.text);
    expect(plain.invocations).toBe(1);
  });

  it('an envelope with ok:false is a script error carrying type and FullyQualifiedErrorId', async () => {
    const session = new PowerShellSession(
      runner({
        stdout:
          '<<<LABCTL-JSON\n{"ok":false,"error":{"message":"switch \\"X\\" not found","type":"Microsoft.HyperV.PowerShell.VirtualizationException","fqid":"ObjectNotFound"}}\nLABCTL-JSON>>>',
        code: 1,
      }),
      { host: 'hv01' },
    );
    const error = await session.run(script, {}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PowerShellScriptError);
    expect((error as PowerShellScriptError).message).toBe('list_vms on hv01: switch "X" not found');
    expect((error as PowerShellScriptError).details).toMatchObject({ fqid: 'ObjectNotFound' });
  });

  it('no envelope: the CLIXML error becomes the message; no exit status means the connection was cut', async () => {
    const clixml =
      '#< CLIXML\r\n<Objs Version="1.1.0.1"><S S="Error">Missing closing \'}\'_x000D__x000A_</S><S S="Error">    + FullyQualifiedErrorId : MissingEndCurlyBrace_x000D__x000A_</S></Objs>';
    const parse = await new PowerShellSession(runner({ stderr: clixml, code: 1 }), { host: 'hv01' })
      .run(script, {})
      .catch((e: unknown) => e);
    expect(parse).toBeInstanceOf(PowerShellHostError);
    expect((parse as Error).message).toBe("list_vms on hv01 failed: Missing closing '}'");
    const cut = await new PowerShellSession(runner({ code: null }), { host: 'hv01' })
      .run(script, {})
      .catch((e: unknown) => e);
    expect((cut as Error).message).toContain('the connection ended without an exit status');
  });

  it('a runner failure is a transport error naming the script and host', async () => {
    const error = await new PowerShellSession(runner(new Error('ECONNRESET')), { host: 'hv01' })
      .run(script, {})
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PowerShellTransportError);
    expect((error as Error).message).toBe('list_vms on hv01: ECONNRESET');
  });
});
