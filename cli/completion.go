package cli

// Shell completion. urfave/cli answers the hidden last argument
// --generate-bash-completion with the words that may come next (commands,
// or the flags that start with a partial "-..." before it); the bash and
// zsh scripts below ask it for them, the fish script is urfave/cli's own.

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	urfave "github.com/urfave/cli/v2"
)

// completeFlag is the argument urfave/cli answers with completions.
const completeFlag = "--generate-bash-completion"

// bashCompletion asks llmbatch for the words that may follow what is typed;
// when it has none (a file argument), bash completes file names.
const bashCompletion = `# bash completion for llmbatch: source <(llmbatch completion bash)
_llmbatch_complete() {
  local cur=${COMP_WORDS[COMP_CWORD]}
  local -a ask=("${COMP_WORDS[@]:0:COMP_CWORD}")
  # after "--" everything is an argument: asking would run the command
  [[ " ${ask[*]} " == *" -- "* ]] && return
  if [[ $cur == -* ]]; then
    ask+=("$cur")
  fi
  local IFS=$'\n'
  COMPREPLY=($(compgen -W "$("${ask[@]}" ` + completeFlag + ` 2>/dev/null)" -- "$cur"))
}
complete -o bashdefault -o default -F _llmbatch_complete llmbatch
`

// zshCompletion does the same for zsh (compinit must be loaded).
const zshCompletion = `#compdef llmbatch
# zsh completion for llmbatch: source <(llmbatch completion zsh)
_llmbatch() {
  local cur=${words[-1]}
  local -a ask opts
  ask=(${words[1,-2]})
  # after "--" everything is an argument: asking would run the command
  if (( ${ask[(Ie)--]} )); then
    _files
    return
  fi
  if [[ $cur == -* ]]; then
    ask+=($cur)
  fi
  opts=("${(@f)$(${ask[@]} ` + completeFlag + ` 2>/dev/null)}")
  if [[ -n ${opts[1]} ]]; then
    compadd -a opts
  else
    _files
  fi
}
compdef _llmbatch llmbatch
`

func completionCommand(stdout io.Writer) *urfave.Command {
	return &urfave.Command{
		Name:      "completion",
		Usage:     "print the shell completion script for bash, zsh or fish",
		ArgsUsage: "bash|zsh|fish",
		Description: `Example:
   source <(llmbatch completion bash)     # in ~/.bashrc
   source <(llmbatch completion zsh)      # in ~/.zshrc, after compinit
   llmbatch completion fish > ~/.config/fish/completions/llmbatch.fish`,
		Action: func(c *urfave.Context) error {
			return runCompletion(c.App, c.Args().First(), stdout)
		},
	}
}

// runCompletion writes the completion script of shell for app.
func runCompletion(app *urfave.App, shell string, stdout io.Writer) error {
	var script string
	switch shell {
	case "bash":
		script = bashCompletion
	case "zsh":
		script = zshCompletion
	case "fish":
		s, err := app.ToFishCompletion()
		if err != nil {
			return fmt.Errorf("fish completion: %w", err)
		}
		script = s
	case "":
		return errors.New("give a shell: bash, zsh or fish")
	default:
		return fmt.Errorf("no completion for shell %q: bash, zsh or fish", shell)
	}
	_, err := io.WriteString(stdout, script)
	return err
}

// completeFlagsOnly makes each command complete its flags after a "-" and
// nothing else, where urfave/cli would offer its help subcommand: what
// follows a command is a file or a job name, which the shell completes.
func completeFlagsOnly(cmds []*urfave.Command) {
	for _, cmd := range cmds {
		flags := urfave.DefaultCompleteWithFlags(cmd)
		cmd.BashComplete = func(c *urfave.Context) {
			// The word being completed, as urfave/cli reads it: the one
			// before the completion flag, from the process's arguments.
			if n := len(os.Args); n > 2 && strings.HasPrefix(os.Args[n-2], "-") {
				flags(c)
			}
		}
	}
}
