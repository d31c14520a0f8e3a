import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command, Config } from '@oclif/core';

/**
 * Shell completion, the way cobra-based tools (kubectl, gh, helm) do it: the shell script asks
 * `labctl complete -- WORDS...` for candidates, so bash, zsh and fish complete the same commands,
 * flags, flag values and the lab's VM names, and nothing goes stale when labctl changes.
 */

/** Commands whose arguments are VM names of the lab. */
const VM_ARGUMENTS = new Set([
  'ssh',
  'start',
  'stop',
  'restart',
  'destroy',
  'ip',
  'clone',
  'migrate',
  'export',
  'snapshot:save',
  'snapshot:list',
  'snapshot:revert',
  'snapshot:delete',
  'template:capture',
]);

export function completions(config: Config, words: readonly string[], env: NodeJS.ProcessEnv = process.env): string[] {
  const current = words.at(-1) ?? '';
  const before = words.slice(0, -1);
  const visible = config.commands.filter((command) => !command.hidden);
  // The command: the longest run of leading words that names a command or a topic.
  let id = '';
  let used = 0;
  for (let i = 0; i < before.length; i++) {
    const next = id ? `${id}:${before[i]}` : before[i]!;
    if (!visible.some((command) => command.id === next || command.id.startsWith(`${next}:`))) break;
    id = next;
    used = i + 1;
  }
  const command = visible.find((candidate) => candidate.id === id);
  if (!command || (used === before.length && !current.startsWith('-') && hasSubcommands(visible, id))) {
    // Still choosing a command: the next word of every command under what was typed.
    const prefix = id ? `${id}:` : '';
    const next = new Set(
      visible.filter((c) => c.id.startsWith(prefix)).map((c) => c.id.slice(prefix.length).split(':')[0]!),
    );
    return [...next].filter((word) => word && word.startsWith(current)).sort();
  }
  const flags = Object.entries(command.flags ?? {});
  const previous = before.at(-1);
  if (previous?.startsWith('--') && !previous.includes('=')) {
    const flag = command.flags[previous.slice(2)];
    if (flag?.type === 'option') return (flag.options ?? []).filter((option) => option.startsWith(current));
  }
  if (current.startsWith('-')) {
    const names = flags.flatMap(([name, flag]) => [
      `--${name}`,
      ...(flag.type === 'boolean' && flag.allowNo ? [`--no-${name}`] : []),
    ]);
    return names.filter((name) => name.startsWith(current)).sort();
  }
  if (VM_ARGUMENTS.has(command.id)) return vmNames(labDirOf(before, env)).filter((name) => name.startsWith(current));
  return [];
}

function hasSubcommands(commands: readonly Command.Loadable[], id: string): boolean {
  return commands.some((command) => command.id.startsWith(`${id}:`));
}

function labDirOf(words: readonly string[], env: NodeJS.ProcessEnv): string {
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    if (word === '--lab-dir' && words[i + 1]) return resolve(words[i + 1]!);
    if (word.startsWith('--lab-dir=')) return resolve(word.slice('--lab-dir='.length));
  }
  return resolve(env.LABCTL_LAB_DIR ?? process.cwd());
}

/** The lab's VM names, read straight from the state (a TAB must not wait on zod or a hypervisor). */
function vmNames(labDir: string): string[] {
  try {
    const state = JSON.parse(readFileSync(join(labDir, '.labctl', 'state.json'), 'utf8')) as { vms?: unknown };
    if (!Array.isArray(state.vms)) return [];
    return state.vms
      .map((vm) => (vm as { name?: unknown }).name)
      .filter((name): name is string => typeof name === 'string' && /^[A-Za-z0-9_.-]+$/.test(name))
      .sort();
  } catch {
    return [];
  }
}

export const COMPLETION_SCRIPTS = {
  bash: `# labctl completion for bash: source <(labctl completion bash)
_labctl() {
  local IFS=$'\\n'
  local candidates
  candidates=$(labctl complete -- "\${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null)
  COMPREPLY=()
  [ -n "$candidates" ] && COMPREPLY=($(compgen -W "$candidates" -- "\${COMP_WORDS[COMP_CWORD]}"))
}
# -o default: where labctl has nothing to offer (paths), bash completes file names.
complete -o default -F _labctl labctl
`,
  zsh: `#compdef labctl
# labctl completion for zsh: source <(labctl completion zsh)
_labctl() {
  local -a candidates
  candidates=("\${(@f)$(labctl complete -- "\${(@)words[2,CURRENT]}" 2>/dev/null)}")
  if (( \${#candidates} )) && [[ -n "\${candidates[1]}" ]]; then
    compadd -- "\${candidates[@]}"
  else
    _files
  fi
}
compdef _labctl labctl
`,
  fish: `# labctl completion for fish: labctl completion fish | source
function __labctl_complete
    set -l tokens (commandline -opc) (commandline -ct)
    set -l out (labctl complete -- $tokens[2..-1] 2>/dev/null)
    if test (count $out) -eq 0
        __fish_complete_path (commandline -ct)
    else
        printf '%s\\n' $out
    end
end
complete -c labctl -f -a '(__labctl_complete)'
`,
} as const;
