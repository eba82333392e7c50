//go:build purego

package kernels

// puregoBuild is set in a purego build: tests of pure-Go code that does not
// depend on the tag (the 16-bit conversions) run their long exhaustive
// parts only in the other builds.
const puregoBuild = true
