// Command fuseopt shows what fuseopt does on this CPU.
//
//	fuseopt [tour]       the tour: CPU, features and dispatch level, which path
//	                     AdamFast takes, a bit-exact parity self-check of every
//	                     level, a compact benchmark
//	fuseopt bench        the full comparison with plain Go, gonum and the memory
//	                     roof (text, -markdown or -json; -plot file.svg|png)
//	fuseopt demo         training on generated data: an MLP with SGD, momentum,
//	                     Adam and AdamW, logistic regression with Newton
//	                     against Adam (-plot file.svg|png), and a deeper MLP
//	                     with Muon + AdamW against AdamW; demo -mixed: the MLP
//	                     trained with Adam in float32 and in bfloat16 (master
//	                     weights, stochastic rounding, round to nearest)
//	fuseopt help [cmd]   the commands, or the flags of one
//
// In a clone of the repository, run it as go run ./cmd/fuseopt [command];
// go install github.com/fuseopt/fuseopt/cmd/fuseopt@latest installs it as
// fuseopt.
//
// Usage errors (a bad flag, an unknown command, a plot file that cannot be
// written) print one line on stderr and exit with status 2; a failed parity
// check or measurement, or output that cannot be written, exits with
// status 1. A FUSEOPT_CPU value that was ignored is reported by one warning
// line on stderr.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/fuseopt/fuseopt/kernels"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `fuseopt shows what the fuseopt optimizer kernels do on this CPU.

usage:
  fuseopt [tour] [flags]   the tour: CPU, level, parity self-check, a short benchmark
  fuseopt bench [flags]    the full comparison table (-json, -markdown, -plot file.svg|png)
  fuseopt demo [flags]     train an MLP, a logistic regression and a deeper MLP (Muon + AdamW) on generated data
                           (-mixed: the MLP in float32 and in bfloat16, three ways)
  fuseopt help [command]   this text, or the flags of a command

"fuseopt <command> -h" lists the flags of a command too. In a clone of the
repository, run it as "go run ./cmd/fuseopt <command>"; install it with
"go install github.com/fuseopt/fuseopt/cmd/fuseopt@latest".
`

// commands runs each command with its arguments.
var commands = map[string]func(args []string, stdout, stderr io.Writer) int{
	"tour":  tourCmd,
	"bench": benchCmd,
	"demo":  demoCmd,
}

const commandList = "tour, bench, demo or help"

// run is the command with its arguments, writing to stdout and stderr; it
// returns the exit status. A command that otherwise succeeds exits with
// status 1 when its output could not be written. An ignored FUSEOPT_CPU
// value is warned of first.
func run(args []string, stdout, stderr io.Writer) int {
	if kernels.EnvWarning() {
		fmt.Fprintf(stderr, "fuseopt: warning: %s\n", kernels.EnvNote())
	}
	out := &errWriter{w: stdout}
	status := dispatch(args, out, stderr)
	if out.err != nil && status == 0 {
		return outputErr(stderr, "fuseopt", out.err)
	}
	return status
}

func dispatch(args []string, stdout, stderr io.Writer) int {
	name := "tour"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	if name == "help" {
		return help(args, stdout, stderr)
	}
	cmd, ok := commands[name]
	if !ok {
		return unknownCmd(stderr, name)
	}
	return cmd(args, stdout, stderr)
}

// help prints the usage, or with one argument the flags of that command.
func help(args []string, stdout, stderr io.Writer) int {
	switch {
	case len(args) == 0 || len(args) == 1 && slices.Contains([]string{"help", "-h", "-help", "--help"}, args[0]):
		fmt.Fprint(stdout, usage)
		return 0
	case len(args) > 1:
		return usageErr(stderr, "fuseopt help", fmt.Errorf("too many arguments %q (want at most one command)", args))
	}
	cmd, ok := commands[args[0]]
	if !ok {
		return unknownCmd(stderr, args[0])
	}
	return cmd([]string{"-h"}, stdout, stderr)
}

func unknownCmd(stderr io.Writer, name string) int {
	return usageErr(stderr, "fuseopt", fmt.Errorf("unknown command %q (want %s)", name, commandList))
}

// errWriter passes writes on to w until one fails; it then keeps the error
// and fails every later write with it.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	e.err = err
	return n, err
}

// writeFailed returns the error of the first failed write to w, if w is
// the stdout that run gives a command.
func writeFailed(w io.Writer) error {
	if e, ok := w.(*errWriter); ok {
		return e.err
	}
	return nil
}

// outputErr prints that the output of command name could not be written
// and returns the exit status 1.
func outputErr(stderr io.Writer, name string, err error) int {
	fmt.Fprintf(stderr, "%s: cannot write the output: %v\n", name, err)
	return 1
}

// usageErr prints err as the one-line usage error of command name and
// returns the exit status 2.
func usageErr(stderr io.Writer, name string, err error) int {
	fmt.Fprintf(stderr, "%s: %v\n", name, err)
	return 2
}

// parseFlags parses args with fs. It returns done when the command must
// stop, with the exit status: 0 after -h (the flags are listed on stdout),
// 2 after a usage error (one line on stderr).
func parseFlags(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) (status int, done bool) {
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.SetOutput(stdout)
		if fs.Name() == "fuseopt" {
			fmt.Fprint(stdout, usage+"\nflags of the tour:\n")
		} else {
			fmt.Fprintf(stdout, "usage: %s [flags]\n\nflags:\n", fs.Name())
		}
		fs.PrintDefaults()
		return 0, true
	case err != nil:
		return usageErr(stderr, fs.Name(), fmt.Errorf("%v (%s -h lists the flags)", err, fs.Name())), true
	case fs.NArg() > 0:
		return usageErr(stderr, fs.Name(), fmt.Errorf("unexpected argument %q (%s -h lists the flags)", fs.Arg(0), fs.Name())), true
	}
	return 0, false
}
