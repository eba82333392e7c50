package main

import (
	"bytes"
	"flag"
	"fmt"
	"go/format"
	"os"
	"strings"

	"github.com/fuseopt/fuseopt/_asm/x86"
	"github.com/fuseopt/fuseopt/internal/abi"
)

// ret is "return " for a function with sums results.
func ret(sums int) string {
	if sums > 0 {
		return "return "
	}
	return ""
}

// results is the result list of a function with sums float64 results.
func results(sums int) string {
	if sums == 0 {
		return ""
	}
	return " (" + strings.TrimSuffix(strings.Repeat("float64, ", sums), ", ") + ")"
}

// gridArgs are the arguments after the coefficient block of a call to grid
// kernel d: its streams, rows, cols, its arguments and the mode.
func gridArgs(d *abi.Kernel) string {
	var a []string
	for _, s := range d.Streams {
		a = append(a, s.Name)
	}
	a = append(a, "rows", "cols")
	a = append(a, d.Args...)
	a = append(a, "mode")
	return strings.Join(a, ", ")
}

// slot is one entry of a level's table in package kernels (set.go's table
// type) filled by a generated function.
type slot struct {
	field   string      // the field of the table
	fn      string      // the assembly function
	coefs   bool        // fn takes the coefficient block first and the mode last
	streams []string    // the pointer parameters of a kernel with coefs
	args    []string    // scalar parameters after the mode (element type)
	sums    int         // float64 results
	split   int         // k of an AdamFast kernel of split k/4: adamFastSplits[k]
	grid    *abi.Kernel // a grid kernel: its description (its own signature)
	desc    *abi.Kernel // a kernel with half streams: its description
}

// slots collects the table entries of every level and precision, in the
// order the functions are generated.
var slots = map[isa][]slot{}

func addSlot(t isa, s slot) { slots[t] = append(slots[t], s) }

// writeWiring appends to the stubs file the tables that wire the generated
// functions into package kernels: archSets, the assembly levels of amd64.
// Package kernels initialises its level list from archSets, so the order of
// initialisation follows from the variables, not from file names. The
// AdamFast kernels go into adamFastSplits, by split; package kernels sets
// adamFast from them at start-up (its table of CPU models, fastsplit.go).
func writeWiring() error {
	path := flag.Lookup("stubs").Value.String()
	src, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	b.Write(src)
	b.WriteString(`
// archSets are the assembly levels of this architecture, lowest first:
// the functions above, wired into the tables of package kernels.
var archSets = []*Set{
`)
	for _, z := range []bool{false, true} {
		t := isa{x86.ISA{Z: z}}
		fmt.Fprintf(&b, "{\nlevel: %s,\n", t.Level())
		for _, f64 := range []bool{false, true} {
			t.F64 = f64
			prec := strings.ToLower(t.Prec())
			fmt.Fprintf(&b, "%s: table[%s]{\n", prec, t.Elem())
			var splits bytes.Buffer // the AdamFast kernels, by split
			for _, s := range slots[t] {
				out := &b
				if s.split > 0 {
					out = &splits
					fmt.Fprintf(out, "%d: ", s.split)
				}
				if s.grid != nil {
					fmt.Fprintf(out, "%s: func%s { %s%s(&c.%s, %s) },\n", s.field,
						abi.GridSignature(s.grid, "c *Coeffs", t.Elem()), ret(len(s.grid.Sums)), s.fn, prec, gridArgs(s.grid))
				} else if s.coefs {
					args := strings.Join(s.streams, ", ")
					scalars, decl := "", ""
					if len(s.args) > 0 {
						scalars = ", " + strings.Join(s.args, ", ")
						decl = scalars + " " + t.Elem()
					}
					field := s.field + ": "
					if s.split > 0 {
						field = ""
					}
					fmt.Fprintf(out, "%sfunc(c *Coeffs, %s *%s, n int%s)%s { %s%s(&c.%s, %s, n, c.mode%s) },\n",
						field, args, t.Elem(), decl, results(s.sums), ret(s.sums), s.fn, prec, args, scalars)
				} else {
					fmt.Fprintf(out, "%s: %s,\n", s.field, s.fn)
				}
			}
			if splits.Len() > 0 {
				fmt.Fprintf(&b, "adamFastSplits: fastKernels[%s]{\n%s},\n", t.Elem(), splits.Bytes())
			}
			b.WriteString("},\n")
		}
		b.WriteString(mixedWiring(z))
		b.WriteString("},\n")
	}
	b.WriteString("}\n")
	b.WriteString(neWiring())
	out, err := format.Source(b.Bytes())
	if err != nil {
		return fmt.Errorf("wiring: %v", err)
	}
	return os.WriteFile(path, out, 0o644)
}
