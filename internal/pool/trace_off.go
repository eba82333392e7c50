//go:build !pooltrace

package pool

const tracing = false
