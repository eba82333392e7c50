// Package fusegomlx trains GoMLX models with fuseopt's fused optimizer
// kernels on GoMLX's pure-Go backend (simplego).
package fusegomlx
