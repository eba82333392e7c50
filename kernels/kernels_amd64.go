//go:build !purego

package kernels

import "github.com/klauspost/cpuid/v2"

// The AVX2 and AVX-512 levels: kernels_amd64.s, its stubs and the tables
// that wire them in (archSets, in stubs_amd64.go) are written by the
// generator in _asm.
//
//go:generate sh -c "cd _asm && go run . -out ../kernels_amd64.s -stubs ../stubs_amd64.go -pkg kernels"

// fastIsExactOn reports whether AdamFast should run the exact kernel on this
// CPU: AMD family 0x19 (Zen 3/4) and later, whose dividers keep pace (see
// the README's measurements).
func fastIsExactOn() bool {
	c := &cpuid.CPU
	return c.VendorID == cpuid.AMD && c.Family >= 0x19
}
