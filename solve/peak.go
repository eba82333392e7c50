package solve

import "github.com/fuseopt/fuseopt/internal/peak"

// The FMA-peak kernels (fmaPeak) measure the machine's float64 FMA
// throughput: BenchmarkFMAPeak, the %peak of BenchmarkCholeskySolveF64, and,
// through internal/peak, the command's benchmark table.
func init() { peak.Kernel = fmaPeak }
