package optim

import (
	"fmt"
	"slices"
	"testing"
	"time"

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

// BenchmarkMuonVsNewtonSchulz alternates, iteration by iteration, one Muon
// step of a float32 1024×1024 parameter and the five Newton–Schulz steps
// alone (solve.Solver.NewtonSchulz on a matrix of the same size), on one
// goroutine, and reports both times and their ratio: the cost of the
// momentum, the norm, the division and the update. Multiplied by solve's
// BenchmarkNewtonSchulzVsProducts ratio it gives the Muon step over its
// products alone.
func BenchmarkMuonVsNewtonSchulz(b *testing.B) {
	shapes := [][2]int{{1024, 1024}}
	m := newMuonModel[float32](shapes)
	sp := solve.NewPool(1)
	defer sp.Close()
	o := m.muon(b, DefaultMuon(), MuonOptions{Workers: 1, Pool: sp}, shapes)
	m.fill(0)
	if _, err := o.Step(); err != nil {
		b.Fatal(err)
	}
	s, err := solve.New[float32](solve.Options{Workers: 1, Pool: sp})
	if err != nil {
		b.Fatal(err)
	}
	x := solve.Dense[float32]{Rows: 1024, Cols: 1024, Stride: 1024, Data: slices.Clone(m.data[0])}
	ns := solve.DefaultNewtonSchulz()
	var tMuon, tNS time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if _, err := o.Step(); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := s.NewtonSchulz(ns, x); err != nil {
			b.Fatal(err)
		}
		tMuon += t1.Sub(t0)
		tNS += time.Since(t1)
	}
	b.StopTimer()
	b.ReportMetric(float64(tMuon.Microseconds())/1e3/float64(b.N), "muon-ms")
	b.ReportMetric(float64(tNS.Microseconds())/1e3/float64(b.N), "ns5-ms")
	b.ReportMetric(float64(tMuon)/float64(tNS), "muon/ns5")
}
