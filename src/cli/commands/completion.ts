import { UsageError, type Command } from "../command.js";
import { parseFlags } from "../flags.js";

/*
 * The scripts are thin: each hands the words typed so far to `banger __complete`, which knows
 * the commands, their flags and (from the daemon) the VM, image and snapshot names.
 */
const SCRIPTS: Readonly<Record<string, string>> = {
  bash: `# banger completion for bash: source <(banger completion bash)
_banger() {
  local IFS=$'\\n'
  COMPREPLY=($(banger __complete "\${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null))
}
complete -o default -F _banger banger
`,
  zsh: `#compdef banger
# banger completion for zsh: source <(banger completion zsh) (after compinit)
_banger() {
  local -a candidates
  candidates=("\${(@f)$(banger __complete "\${(@)words[2,CURRENT]}" 2>/dev/null)}")
  compadd -a candidates
}
compdef _banger banger
`,
  fish: `# banger completion for fish: banger completion fish | source
complete -c banger -f -a '(banger __complete (commandline -opc)[2..-1] (commandline -ct) 2>/dev/null)'
`,
};

export const completionCommand: Command = {
  path: ["completion"],
  summary: "print a shell completion script (commands, flags, and VM, image and snapshot names from the daemon)",
  usage: "banger completion bash|zsh|fish",
  description: "Load it in the current shell, or install it for every new one: bash: banger completion bash > /etc/bash_completion.d/banger; zsh: banger completion zsh > \"${fpath[1]}/_banger\"; fish: banger completion fish > ~/.config/fish/completions/banger.fish",
  flags: {},
  examples: ["source <(banger completion bash)", "source <(banger completion zsh)", "banger completion fish | source"],
  run(args, ctx) {
    const { positionals } = parseFlags({}, args);
    const script = positionals.length === 1 ? SCRIPTS[positionals[0] ?? ""] : undefined;
    if (script === undefined) throw new UsageError(`give one shell: ${Object.keys(SCRIPTS).join(", ")}`);
    ctx.stdout.write(script);
    return Promise.resolve(0);
  },
};
