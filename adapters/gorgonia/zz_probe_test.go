package fusegorgonia

import (
	"fmt"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

func TestZZProbe(t *testing.T) {
	for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
		func() {
			defer func() {
				if r := recover(); r != nil {
					fmt.Println(dt, "panic:", r)
				}
			}()
			n := newNet(t, dt, 3)
			s := G.NewBarzilaiBorweinSolver(G.WithLearnRate(0.1))
			b := n.forward(t)
			for i := 0; i < 300; i++ {
				if err := s.Step(G.NodesToValueGrads(n.learnables[:2])); err != nil {
					fmt.Println(dt, "step", i, "err", err)
					return
				}
				c := n.forward(t)
				if i < 10 || i%50 == 0 {
					fmt.Println(dt, i, c)
				}
			}
			fmt.Println(dt, "before", b, "after", n.forward(t))
		}()
	}
}
