package optim

import (
	"fmt"
	"testing"
	"unsafe"

	"github.com/fuseopt/fuseopt/kernels"
)

// BenchmarkStepHalf times Optimizer.Step on one tensor with Adam, one
// goroutine: float32 beside the 16-bit modes (bfloat16 master, 16-bit
// state rounded to nearest and stochastically), and each mode's kernel
// called directly on the whole tensor, so that the ratio of the two is
// the optimizer's cost. Bytes per parameter: float32 28, master 30 (16-bit
// gradient read, 16-bit copy written), 16-bit state 14. bf16-master-scaled
// is bf16-master under a loss scale (2 and 1/2 in turn, so that the
// gradients keep their values), which Step unscales in a pass of its own
// before the update (4 bytes more: the gradient read and written).
func BenchmarkStepHalf(b *testing.B) {
	h := AdamConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}
	for _, n := range []int{1 << 16, 1 << 24} {
		for _, mode := range []string{"float32", "bf16-master", "bf16-master-scaled", "bf16-state16", "bf16-state16-sr"} {
			for _, direct := range []bool{false, true} {
				if direct && mode == "bf16-master-scaled" {
					continue // (the kernel is bf16-master's)
				}
				name := fmt.Sprintf("n=%d/%s/optim", n, mode)
				if direct {
					name = fmt.Sprintf("n=%d/%s/kernel", n, mode)
				}
				b.Run(name, func(b *testing.B) {
					benchHalf(b, h, n, mode, direct)
				})
			}
		}
	}
}

func benchHalf(b *testing.B, h AdamConfig, n int, mode string, direct bool) {
	o := mustNew[float32](b, h, Options{Workers: 1})
	bufs := kernels.Staggered[float32](n, 4, nil)
	p, g, m, v := bufs[0], bufs[1], bufs[2], bufs[3]
	// The 16-bit streams: float32 buffers of half the length, staggered
	// from the others as the optimizer's slab is.
	hb := kernels.Staggered(n/2, 4, p)
	half := func(k int) []kernels.BF16 { return asHalf[kernels.BF16](asU16Float(hb[k])) }
	p16, g16, m16, v16 := half(0), half(1), half(2), half(3)
	for i := range n {
		p[i] = float32(unit(0, 0, i))
		g[i] = float32(unit(0, 1, i)) * 1e-2
		p16[i], g16[i] = kernels.BF16FromF32(p[i]), kernels.BF16FromF32(g[i])
	}
	var err error
	switch mode {
	case "float32":
		err = o.Add("p", p, g)
	case "bf16-master", "bf16-master-scaled":
		err = o.AddBF16("p", p16, g16, Half{Master: p})
	default:
		err = o.AddBF16("p", p16, g16, Half{State16: true, Stochastic: mode == "bf16-state16-sr"})
	}
	if err != nil {
		b.Fatal(err)
	}
	mustStep(b, o)
	c, err := Coefficients[float32](h, 5, 1)
	if err != nil {
		b.Fatal(err)
	}
	s := kernels.Active()
	r := kernels.Rounding{Stochastic: mode == "bf16-state16-sr", Key: 1}
	b.SetBytes(int64(n) * 4) // parameters per second: MB/s ÷ 4 = Mparam/s
	scale := 2.0
	for b.Loop() {
		if mode == "bf16-master-scaled" {
			if err := o.SetLossScale(scale); err != nil {
				b.Fatal(err)
			}
			scale = 1 / scale
		}
		switch {
		case !direct:
			_, err = o.Step()
		case mode == "float32":
			err = s.AdamF32(&c, p, g, m, v, nil)
		case mode == "bf16-master":
			err = s.AdamMasterBF16(&c, p, p16, g16, m, v, nil, r)
		default:
			err = s.Adam16BF16(&c, p16, g16, m16, v16, nil, r)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}

// asU16Float returns the memory of x as 2·len(x) 16-bit values.
func asU16Float(x []float32) []uint16 {
	return unsafe.Slice((*uint16)(unsafe.Pointer(unsafe.SliceData(x))), 2*len(x))
}
