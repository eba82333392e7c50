//go:build pooltrace

package pool

const tracing = true
