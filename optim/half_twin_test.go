package optim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/fuseopt/fuseopt/kernels"
)

// TestHalfMatchesFloat32Twin: bf16/f16 parameters with held masters, a dynamic
// LossScaler, overflows, frozen and no-grad parameters, group edits: the
// masters move exactly as float32 twins with the widened gradients.
func TestHalfMatchesFloat32Twin(t *testing.T) {
	for seed := range uint64(30) {
		for _, f16 := range []bool{false, true} {
			halfTwin(t, seed, f16)
		}
	}
}

func halfTwin(t *testing.T, seed uint64, f16 bool) {
	r := rand.New(rand.NewPCG(seed, 11))
	mk := func(kind int) Hyper {
		switch kind {
		case 0:
			return AdamWConfig{LR: 0.01 * r.Float64(), Beta1: 0.9, Beta2: 0.99, Eps: 1e-8, WeightDecay: 0.1 * float64(r.IntN(2)), AMSGrad: r.IntN(2) == 0}
		case 1:
			m := 0.0
			if r.IntN(2) == 0 {
				m = 0.9
			}
			return SGDConfig{LR: 0.05 * r.Float64(), Momentum: m, WeightDecay: 0.01}
		}
		return NAdamConfig{LR: 2e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, MomentumDecay: 4e-3 * r.Float64(), WeightDecay: 0.01}
	}
	kind := int(seed % 3)
	h0 := mk(kind)
	opts := Options{Workers: 1 + r.IntN(2), ShardThreshold: -1, ChunkSize: 32, LossScaler: LossScaler{Enabled: true, Init: 1 << 10, Interval: 3}}
	o16 := mustNew[float32](t, h0, opts)
	o32 := mustNew[float32](t, h0, opts)
	defer o16.Close()
	defer o32.Close()
	const np = 4
	p16 := make([][]uint16, np)
	g16 := make([][]uint16, np)
	p32 := make([][]float32, np)
	g32 := make([][]float32, np)
	for i := range np {
		n := 1 + r.IntN(90)
		p16[i], g16[i] = make([]uint16, n), make([]uint16, n)
		p32[i], g32[i] = make([]float32, n), make([]float32, n)
		for j := range n {
			p16[i][j] = to16(f16, float32(r.NormFloat64()))
			p32[i][j] = from16(f16, p16[i][j])
		}
		name := fmt.Sprint("p", i)
		var err error
		if f16 {
			err = o16.AddF16(name, asF16(p16[i]), asF16(g16[i]), Half{})
		} else {
			err = o16.AddBF16(name, asBF16(p16[i]), asBF16(g16[i]), Half{})
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := o32.Add(name, p32[i], g32[i]); err != nil {
			t.Fatal(err)
		}
	}
	skips := 0
	defer func() { t.Logf("skips %d scale %v", skips, o16.LossScale()) }()
	for it := range 25 {
		if r.IntN(4) == 0 {
			h := mk(kind)
			e1, e2 := o16.SetGroup(0, h), o32.SetGroup(0, h)
			if (e1 == nil) != (e2 == nil) {
				t.Fatalf("SetGroup: %v vs %v", e1, e2)
			}
		}
		for i := range np {
			name := fmt.Sprint("p", i)
			fr := r.IntN(6) == 0
			_ = o16.SetRequiresGrad(name, !fr)
			_ = o32.SetRequiresGrad(name, !fr)
			if !fr && r.IntN(6) == 0 {
				_ = o16.SetNoGrad(name)
				_ = o32.SetNoGrad(name)
			}
			s := float32(o16.LossScale())
			for j := range g16[i] {
				v := float32(r.NormFloat64()) * s * 1e-3
				if r.IntN(400) == 0 {
					v = float32(math.Inf(1))
				}
				g16[i][j] = to16(f16, v)
				g32[i][j] = from16(f16, g16[i][j])
			}
		}
		if r.IntN(3) == 0 {
			n1, e1 := o16.ClipGradNorm(0.01)
			n2, e2 := o32.ClipGradNorm(0.01)
			if !(n1 == n2 || (n1 != n1 && n2 != n2)) || (e1 == nil) != (e2 == nil) {
				t.Fatalf("clip %v %v / %v %v", n1, e1, n2, e2)
			}
			for i := range np {
				for j := range g16[i] {
					g32[i][j] = from16(f16, g16[i][j])
				}
			}
		}
		if !f16 && r.IntN(3) == 0 {
			if err := o16.UnscaleGrads(); err != nil {
				t.Fatal(err)
			}
			if err := o32.UnscaleGrads(); err != nil {
				t.Fatal(err)
			}
			for i := range np {
				if !o16.params[i].active() {
					continue
				}
				for j := range g16[i] {
					g32[i][j] = from16(f16, g16[i][j])
				}
			}
		}
		r1, e1 := o16.Step()
		r2, e2 := o32.Step()
		if e1 != nil || e2 != nil || r1 != r2 {
			t.Fatalf("seed %d f16 %v it %d: %v %v / %v %v", seed, f16, it, r1, e1, r2, e2)
		}
		if r1.Skipped {
			skips++
		}
		if o16.LossScale() != o32.LossScale() {
			t.Fatalf("scales %v %v", o16.LossScale(), o32.LossScale())
		}
		for i := range np {
			m, _ := o16.Master(fmt.Sprint("p", i))
			if !bitsEqual(m, p32[i]) {
				t.Fatalf("seed %d f16 %v it %d: p%d master differs", seed, f16, it, i)
			}
			for j := range m {
				if p16[i][j] != to16(f16, m[j]) {
					t.Fatalf("seed %d it %d: 16-bit p%d[%d] not the rounded master", seed, it, i, j)
				}
			}
		}
	}
	_ = kernels.BF16(0)
}
