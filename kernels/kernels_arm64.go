//go:build !purego

package kernels

// The NEON level: kernels_arm64.s, its Go declarations and the tables that
// wire it in (archSets, in stubs_arm64.go) are written by the generator in
// _neon. Each kernel computes the operation sequence of its generic
// counterpart (sgdGeneric, …) bit for bit; adamFast is the documented
// approximation of [Set.AdamFastF32].

//go:generate env -u GOOS -u GOARCH go run -C _neon . -out ../kernels_arm64.s -stubs ../stubs_arm64.go
