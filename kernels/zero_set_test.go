package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/fuseopt/fuseopt/internal/paritytest"
)

// TestZeroSet: a Set the caller declares (the zero Set, or a nil *Set)
// runs the kernels of Active, bit for bit: every elementwise kernel of
// both types with each of its coefficient sets, every kernel with half
// streams (round to nearest and stochastic), Adafactor's passes and the
// reductions; and it reports what Active reports. Every exported method,
// called with zero arguments, answers as Active's does and does not
// panic, but Issued: a declared Set is not one that Active or For returns.
func TestZeroSet(t *testing.T) {
	for name, s := range map[string]*Set{"zero Set": {}, "nil *Set": nil} {
		t.Run(name, func(t *testing.T) {
			zeroSetElementwise[float32](t, s)
			zeroSetElementwise[float64](t, s)
			zeroSetMixed(t, s)
			zeroSetAdafactor[float32](t, s)
			zeroSetAdafactor[float64](t, s)

			a := Active()
			if s.Level() != a.Level() || s.BF16Nearest() != a.BF16Nearest() || s.FastIsExact() != a.FastIsExact() ||
				!reflect.DeepEqual(s.FastPathF32(), a.FastPathF32()) || !reflect.DeepEqual(s.FastPathF64(), a.FastPathF64()) {
				t.Errorf("what the set reports differs from Active's: level %v, %q", s.Level(), s.BF16Nearest())
			}
			for _, k := range []string{"sgd", "momentum", "adam", "adamFast", "lion", "adagrad", "rmsprop", "adamax", "adadelta", "nadam", "radam"} {
				for _, size := range []int{4, 8} {
					if got, want := s.KernelLevel(k, size), a.KernelLevel(k, size); got != want {
						t.Errorf("KernelLevel(%s, %d) = %v, Active's %v", k, size, got, want)
					}
				}
			}
			typ := reflect.TypeFor[*Set]()
			for i := range typ.NumMethod() {
				m := typ.Method(i)
				call := func(recv *Set) (out string) {
					defer func() {
						if r := recover(); r != nil {
							out = fmt.Sprint("panic: ", r)
						}
					}()
					args := []reflect.Value{reflect.ValueOf(recv)}
					for j := 1; j < m.Type.NumIn(); j++ {
						args = append(args, reflect.Zero(m.Type.In(j)))
					}
					for _, r := range m.Func.Call(args) {
						out += fmt.Sprintf("%v;", r.Interface())
					}
					return out
				}
				if m.Name == "Issued" { // the one answer of its own: Active and For never return it
					if s.Issued() {
						t.Error("a declared Set is issued")
					}
					continue
				}
				if got, want := call(s), call(a); got != want {
					t.Errorf("%s with zero arguments: %s, Active's %s", m.Name, got, want)
				}
			}
		})
	}
}

func zeroSetElementwise[T Float](t *testing.T, s *Set) {
	const n = 67 // a vector and a tail at every level
	for _, k := range append(elementwiseKinds[T](), adamKernel[T](true)) {
		for ci := range k.coeffs {
			r := rand.New(rand.NewPCG(uint64(ci), 5))
			in := make([][]T, len(k.streams))
			for st := range in {
				in[st] = make([]T, n)
				paritytest.Fill(r, in[st], 0.05, k.nonneg[st])
			}
			want, got := cloneAll(in), cloneAll(in)
			errW, errG := k.run(Active(), &k.coeffs[ci], want), k.run(s, &k.coeffs[ci], got)
			if fmt.Sprint(errW) != fmt.Sprint(errG) {
				t.Fatalf("%s coeffs#%d: error %v, Active's %v", k.name, ci, errG, errW)
			}
			for st := range in {
				if err := paritytest.Diff(want[st], got[st]); err != nil {
					t.Fatalf("%s coeffs#%d stream %s: %v", k.name, ci, k.streams[st], err)
				}
			}
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	x, y, z, w := make([]T, n), make([]T, n), make([]T, n), make([]T, n)
	for _, v := range [][]T{x, y, z, w} {
		paritytest.Fill(r, v, 0, false)
	}
	var got, want []any
	switch a := any([][]T{x, y, z, w}).(type) {
	case [][]float32:
		for i, set := range []*Set{Active(), s} {
			d, err := set.DotF32(a[0], a[1])
			sy, yy, err2 := set.SecantDotsF32(a[0], a[1], a[2], a[3])
			sum, nf := set.SumSquaresCheckF32(a[0])
			out := []any{set.SumSquaresF32(a[0]), d, err, sy, yy, err2, sum, nf, set.NonFiniteF32(a[0])}
			if i == 0 {
				want = out
			} else {
				got = out
			}
		}
	case [][]float64:
		for i, set := range []*Set{Active(), s} {
			d, err := set.DotF64(a[0], a[1])
			sy, yy, err2 := set.SecantDotsF64(a[0], a[1], a[2], a[3])
			sum, nf := set.SumSquaresCheckF64(a[0])
			out := []any{set.SumSquaresF64(a[0]), d, err, sy, yy, err2, sum, nf, set.NonFiniteF64(a[0])}
			if i == 0 {
				want = out
			} else {
				got = out
			}
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("reductions: %v, Active's %v", got, want)
	}
}

func cloneAll[T Float](in [][]T) [][]T {
	out := make([][]T, len(in))
	for i := range in {
		out[i] = slices.Clone(in[i])
	}
	return out
}

func zeroSetMixed(t *testing.T, s *Set) {
	for _, k := range mixedKernels() {
		for _, h := range []string{"BF16", "F16"} {
			for _, ci := range slices.Compact([]int{0, len(k.coeffs) - 1}) {
				for _, sr := range []bool{false, true} {
					bw := newMixedBufs(&k, h, 67, 0, 0.05, 3)
					bg := bw.clone()
					rnd := Rounding{Stochastic: sr, Key: SRKey(7, 1, 2)}
					fw, uw := bw.slices()
					fg, ug := bg.slices()
					errW, errG := k.run(Active(), h, &k.coeffs[ci], fw, uw, rnd), k.run(s, h, &k.coeffs[ci], fg, ug, rnd)
					if fmt.Sprint(errW) != fmt.Sprint(errG) {
						t.Fatalf("%s%s coeffs#%d sr=%v: error %v, Active's %v", k.name, h, ci, sr, errG, errW)
					}
					for st := range k.streams {
						same := slices.Equal(bw.u[st], bg.u[st])
						if bw.f[st] != nil {
							same = slices.EqualFunc(bw.f[st], bg.f[st], func(a, b float32) bool { return math.Float32bits(a) == math.Float32bits(b) })
						}
						if !same {
							t.Fatalf("%s%s coeffs#%d sr=%v stream %s differs from Active's", k.name, h, ci, sr, k.streams[st])
						}
					}
				}
			}
		}
	}
}

func zeroSetAdafactor[T Float](t *testing.T, s *Set) {
	for _, factored := range []bool{true, false} {
		h := Adafactor{LR: 1e-2, Beta2Decay: -0.8, Eps1Machine: true, Eps2: 1e-3, D: 1, WeightDecay: 0.01}
		var st [2]*adafactorState[T]
		r := rand.New(rand.NewPCG(4, 4))
		p := make([]T, 7*9)
		paritytest.Fill(r, p, 0, false)
		g := make([]T, len(p))
		for i, set := range []*Set{Active(), s} {
			st[i] = newAdafactorState(slices.Clone(p), 7, 9, factored)
			r := rand.New(rand.NewPCG(5, 5))
			for step := range 3 {
				paritytest.Fill(r, g, 0, false)
				c := must(h.Coeffs(int64(step + 1)))
				if err := st[i].step(set, &c, g); err != nil {
					t.Fatal(err)
				}
			}
		}
		for _, pair := range [][2][]T{{st[0].p, st[1].p}, {st[0].rv, st[1].rv}, {st[0].cv, st[1].cv}, {st[0].v, st[1].v}} {
			if err := paritytest.Diff(pair[0], pair[1]); err != nil {
				t.Fatalf("Adafactor factored=%v: %v", factored, err)
			}
		}
	}
}
