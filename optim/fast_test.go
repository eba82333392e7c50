package optim

import (
	"bytes"
	"fmt"
	"math"
	"testing"
)

// Fast Adam: reproducible on one level across worker counts and batching,
// close to the exact optimizer, and saved and restored with its flag.
func TestFastAdam(t *testing.T) {
	for _, h := range []Hyper{
		AdamConfig{LR: 0.01, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, Fast: true},
		AdamWConfig{LR: 0.01, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.05, AMSGrad: true, Fast: true},
	} {
		t.Run(fmt.Sprint(h.Kind()), func(t *testing.T) {
			checkFast[float32](t, h)
			checkFast[float64](t, h)
		})
	}
}

func checkFast[T Float](t *testing.T, h Hyper) {
	const steps = 12
	exactH := h
	switch c := h.(type) {
	case AdamConfig:
		c.Fast = false
		exactH = c
	case AdamWConfig:
		c.Fast = false
		exactH = c
	}
	for _, set := range append(levelSets(t), generic(t)) {
		base := Options{Kernels: set, Workers: 1, ChunkSize: 64}
		want, _ := runExact[T](t, h, base, steps)
		for _, workers := range []int{2, 7} {
			opts := Options{Kernels: set, Workers: workers, ChunkSize: 64, ShardThreshold: -1, WakeThreshold: -1, NoBatch: workers == 7}
			got, _ := runExact[T](t, h, opts, steps)
			if !got.equal(want) {
				t.Errorf("%v workers=%d: fast result differs from 1 worker on the same level", set.Level(), workers)
			}
		}
		exact, _ := runExact[T](t, exactH, base, steps)
		worst := 0.0
		for i := range want.data {
			for j := range want.data[i] {
				a, b := want.data[i][j], exact.data[i][j]
				worst = math.Max(worst, math.Abs(a-b)/math.Max(1e-3, math.Abs(b)))
			}
		}
		// 12 steps of lr 0.01, each within 2⁻²⁰ of the exact update plus a
		// rounding of p: far below 1e-4 relative.
		if worst > 1e-4 {
			t.Errorf("%v: fast Adam strays from exact by %g", set.Level(), worst)
		}
	}
	// The flag survives save/load.
	o := mustNew[T](t, h, Options{})
	defer o.Close()
	var buf bytes.Buffer
	if err := o.Save(&buf); err != nil {
		t.Fatal(err)
	}
	o2 := mustNew[T](t, h, Options{})
	defer o2.Close()
	if err := o2.Load(bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	if g, err := o2.Group(0); err != nil || fmt.Sprint(g) != fmt.Sprint(h) {
		t.Errorf("after load: group %+v, want %+v", g, h)
	}
}

// TestFastAdamWorkersFine: one tensor of a few chunks, which the fine plan
// would cut again by the worker count (planFine): Fast Adam keeps the
// chunks, so every worker count gives 1 worker's bits.
func TestFastAdamWorkersFine(t *testing.T) {
	h := AdamConfig{LR: 0.01, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, Fast: true}
	run := func(workers int) *testModel[float32] {
		m := newTestModel[float32]([]int{65600})
		o := mustNew[float32](t, h, Options{Workers: workers})
		defer o.Close()
		m.register(t, o, nil)
		for s := range 3 {
			m.fillGrads(s)
			mustStep(t, o)
		}
		return m
	}
	want := run(1)
	for _, w := range []int{2, 3, 4} {
		if got := run(w); !bitsEqual(got.data[0], want.data[0]) {
			t.Errorf("workers=%d: Fast Adam differs from 1 worker", w)
		}
	}
}
