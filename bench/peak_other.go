//go:build (!amd64 && !arm64) || purego

package bench

// peakLoop returns the scalar FMA loop: this build has no vector code.
func peakLoop() (string, int, func(n int)) { return scalarPeakLoop() }
