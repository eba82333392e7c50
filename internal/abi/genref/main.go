// Command genref writes kernels_generic_gen.go, the pure-Go reference of
// the element-wise kernels, from their descriptions in internal/abi. Run it
// with go generate in package kernels.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/fuseopt/fuseopt/internal/abi"
)

func main() {
	out := flag.String("out", "kernels_generic_gen.go", "the Go file to write")
	flag.Parse()
	src, err := abi.GoReference()
	if err == nil {
		err = os.WriteFile(*out, src, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
