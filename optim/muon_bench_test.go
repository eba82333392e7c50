package optim

import (
	"fmt"
	"testing"

	"github.com/fuseopt/fuseopt/solve"
)

// BenchmarkMuonStep times one Muon step (5 Newton–Schulz steps) of
// float32 parameters, on one and two goroutines: one 1024×1024 matrix
// (compare with five times solve's BenchmarkNewtonSchulzProducts, the
// products alone), and a model of 12 matrices of 256×256 to 512×1024
// whose iterations run side by side.
func BenchmarkMuonStep(b *testing.B) {
	models := []struct {
		name   string
		shapes [][2]int
	}{
		{"1024x1024", [][2]int{{1024, 1024}}},
		{"12-matrices", [][2]int{{256, 256}, {256, 256}, {256, 512}, {512, 256}, {256, 256}, {256, 256},
			{256, 512}, {512, 256}, {512, 1024}, {1024, 512}, {256, 256}, {256, 256}}},
	}
	for _, md := range models {
		for _, w := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/workers=%d", md.name, w), func(b *testing.B) {
				m := newMuonModel[float32](md.shapes)
				o := m.muon(b, DefaultMuon(), MuonOptions{Workers: w, Pool: solve.NewPool(w)}, md.shapes)
				m.fill(0)
				if _, err := o.Step(); err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if _, err := o.Step(); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
