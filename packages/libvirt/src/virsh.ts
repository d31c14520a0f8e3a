import { run, type RunOptions, type RunResult } from './exec.js';
import { parseDomainList } from './parse.js';

/** virsh against one connection URI. Every call has a deadline; nothing goes through a shell. */
export class Virsh {
  /**
   * `uri`: the connection as the user wrote it (messages, keys); `connectUri`: what virsh is given,
   * when it differs (the same URI with labctl's shared-SSH wrapper, see ssh-mux.ts).
   */
  constructor(
    readonly uri: string,
    private readonly program = 'virsh',
    private readonly connectUri = uri,
  ) {}

  run(args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
    return run(this.program, ['-q', '-c', this.connectUri, ...args], options);
  }

  async text(args: readonly string[], options: RunOptions = {}): Promise<string> {
    return (await this.run(args, options)).stdout;
  }

  async domainNames(): Promise<string[]> {
    const out = await this.text(['list', '--all', '--name']);
    return out
      .split('\n')
      .map((line) => line.trim())
      .filter(Boolean);
  }

  /** "running", "shut off", ... or undefined when the domain does not exist. */
  /** Every domain's state in one call (`virsh list --all`), as domstate spells it ("running", "shut off"). */
  async domainStates(): Promise<Map<string, string>> {
    return parseDomainList(await this.text(['list', '--all']));
  }

  async domainState(name: string): Promise<string | undefined> {
    try {
      return (await this.text(['domstate', name])).trim();
    } catch (err) {
      if (isNoDomain(err)) return undefined;
      throw err;
    }
  }
}

export function isNoDomain(err: unknown): boolean {
  const text = `${(err as Error)?.message ?? ''} ${JSON.stringify((err as { details?: unknown })?.details ?? '')}`;
  return /failed to get domain|Domain not found|no domain with matching name/i.test(text);
}

export function isNotRunning(err: unknown): boolean {
  return /domain is not running|not active/i.test(`${(err as Error)?.message ?? ''}`);
}
