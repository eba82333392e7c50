//go:build !purego

package kernels

// The AVX2 and AVX-512 levels: kernels_amd64.s, its stubs and the tables
// that wire them in (archSets, in stubs_amd64.go) are written by the
// command kernels of the generator module in ../_asm.
//
//go:generate go run -C ../_asm ./kernels -out ../kernels/kernels_amd64.s -stubs ../kernels/stubs_amd64.go -pkg kernels
