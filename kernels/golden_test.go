package kernels

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/fuseopt/fuseopt/internal/paritytest"
)

// The golden file holds the SHA-256 of the bit patterns (NaN canonicalised)
// of fixed-seed runs made by the reference: 50 steps of every kernel variant
// on 10 000 elements. Every level of every architecture must reproduce it;
// this is what proves parity across machines. Fast Adam, which carries an
// error bound instead, is stored as sampled values and compared with a
// tolerance. Regenerate with: go test ./kernels -run Golden -update

var update = flag.Bool("update", false, "rewrite testdata/golden.json from the generic reference")

const (
	goldenN     = 10000
	goldenSteps = 50
	goldenFile  = "testdata/golden.json"
)

type golden struct {
	Hashes map[string]string    `json:"hashes"`
	Fast   map[string][]float64 `json:"fast_samples"`
}

type hasher struct{ b []byte }

func (h *hasher) add(x float64) {
	if x != x {
		x = math.NaN() // one canonical NaN
	}
	h.b = binary.LittleEndian.AppendUint64(h.b, math.Float64bits(x))
}

func hashSlices[T Float](xs ...[]T) string {
	h := &hasher{}
	for _, x := range xs {
		for _, v := range x {
			if v != v {
				h.add(math.NaN())
			} else {
				h.b = binary.LittleEndian.AppendUint64(h.b, paritytest.Bits(v))
			}
		}
	}
	sum := sha256.Sum256(h.b)
	return hex.EncodeToString(sum[:])
}

// goldenData returns the fixed-seed state: p, m, v, vmax/buf and the
// gradients of every step (some of them special values).
func goldenData[T Float](seed uint64) (state [4][]T, grads [][]T) {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	for i := range state {
		state[i] = make([]T, goldenN)
		paritytest.Fill(r, state[i], 0, i >= 2)
	}
	for i := range state[1] {
		state[1][i] *= 0.1 // m
	}
	for i := range state[2] {
		state[2][i] *= 0.01 // v
	}
	grads = make([][]T, goldenSteps)
	for s := range grads {
		grads[s] = make([]T, goldenN)
		paritytest.Fill(r, grads[s], 0.001, false)
	}
	return
}

// goldenVariants runs every kernel variant at level s and returns the hash
// of each; fast variants return samples.
func goldenVariants[T Float](s *Set) (map[string]string, map[string][]float64) {
	hashes := map[string]string{}
	fast := map[string][]float64{}
	prec := "F64"
	var z T
	if sizeOf(z) == 4 {
		prec = "F32"
	}
	for i, pr := range preludes {
		for _, wd := range []float64{0, 0.01} {
			st, gr := goldenData[T](1)
			c := must(SGD{LR: 0.01, WeightDecay: wd, Prelude: pr}.Coeffs())
			for step := range goldenSteps {
				goldenOK(sgdKernel[T]().run(s, &c, [][]T{st[0], gr[step]}))
			}
			hashes[fmt.Sprintf("SGD%s/prelude%d/wd=%v", prec, i, wd)] = hashSlices(st[0])
		}
	}
	for i, pr := range preludes {
		for _, wd := range []float64{0, 0.01} {
			st, gr := goldenData[T](7)
			c := must(SGD{LR: 0.01, WeightDecay: wd, Prelude: pr}.Coeffs())
			for step := range goldenSteps {
				goldenOK(sgdKeepKernel[T]().run(s, &c, [][]T{st[0], gr[step], st[1], st[2]}))
			}
			hashes[fmt.Sprintf("SGDKeep%s/prelude%d/wd=%v", prec, i, wd)] = hashSlices(st[0], st[1], st[2])
		}
	}
	type mom struct {
		name string
		h    Momentum
		ema  bool
	}
	moms := []mom{
		{"heavyball", Momentum{LR: 0.01, Momentum: 0.9}, false},
		{"dampening", Momentum{LR: 0.01, Momentum: 0.9, Dampening: 0.3, WeightDecay: 1e-3}, false},
		{"nesterov", Momentum{LR: 0.01, Momentum: 0.9, Nesterov: true, WeightDecay: 1e-3, Prelude: Prelude{Scale: 0.5, Maximize: true}}, false},
		{"ema", Momentum{LR: 0.01, Momentum: 0.9, Dampening: 0.9}, true},
	}
	for _, mo := range moms {
		st, gr := goldenData[T](2)
		for step := range goldenSteps {
			c := must(mo.h.Coeffs(step == 0 && !mo.ema))
			goldenOK(momentumKernel[T]().run(s, &c, [][]T{st[0], gr[step], st[3]}))
		}
		hashes[fmt.Sprintf("Momentum%s/%s", prec, mo.name)] = hashSlices(st[0], st[3])
	}
	for _, wd := range []float64{0, 0.01} {
		for _, dec := range []bool{false, true} {
			for _, ams := range []bool{false, true} {
				for _, b1fast := range []int{0, 1, 2, 3} { // β1 0.9 or 0.1 (the second lerp form), plain or fast
					isFast, b1 := b1fast&1 != 0, 0.9
					if b1fast >= 2 {
						if !(dec && ams) {
							continue
						}
						b1 = 0.1
					}
					h := Adam{LR: 1e-3, Beta1: b1, Beta2: 0.999, Eps: 1e-8, WeightDecay: wd, Decoupled: dec, AMSGrad: ams}
					st, gr := goldenData[T](3)
					for i := range st[1] {
						st[1][i], st[2][i], st[3][i] = 0, 0, 0
					}
					for step := range goldenSteps {
						c := must(h.Coeffs(int64(step + 1)))
						goldenOK(adamKernel[T](isFast).run(s, &c, [][]T{st[0], gr[step], st[1], st[2], st[3]}))
					}
					name := fmt.Sprintf("Adam%s/wd=%v/decoupled=%v/amsgrad=%v", prec, wd, dec, ams)
					if b1 != 0.9 {
						name += fmt.Sprintf("/beta1=%v", b1)
					}
					if isFast {
						var samp []float64
						for i := 0; i < goldenN; i += 313 {
							samp = append(samp, float64(st[0][i]))
						}
						fast["Fast"+name] = samp
						// m, v, vmax are exact in the fast kernel too, unless
						// coupled weight decay feeds the approximate p back.
						if wd == 0 || dec {
							hashes["Fast"+name+"/state"] = hashSlices(st[1], st[2], st[3])
						}
					} else {
						hashes[name] = hashSlices(st[0], st[1], st[2], st[3])
					}
				}
			}
		}
	}
	for _, wd := range []float64{0, 0.1} {
		for i, pr := range preludes[:2] {
			h := Lion{LR: 1e-3, Beta1: 0.9, Beta2: 0.99, WeightDecay: wd, Prelude: pr}
			st, gr := goldenData[T](6)
			c := must(h.Coeffs())
			for step := range goldenSteps {
				goldenOK(lionKernel[T]().run(s, &c, [][]T{st[0], gr[step], st[1]}))
			}
			hashes[fmt.Sprintf("Lion%s/prelude%d/wd=%v", prec, i, wd)] = hashSlices(st[0], st[1])
		}
	}
	for _, wd := range []float64{0, 0.01} {
		for _, decay := range []float64{0, 0.05} {
			h := Adagrad{LR: 1e-2, LRDecay: decay, WeightDecay: wd, Eps: 1e-10}
			st, gr := goldenData[T](7)
			for i := range st[1] {
				st[1][i] = 0.1 // initial_accumulator_value
			}
			for step := range goldenSteps {
				c := must(h.Coeffs(int64(step + 1)))
				goldenOK(adagradKernel[T]().run(s, &c, [][]T{st[0], gr[step], st[1]}))
			}
			hashes[fmt.Sprintf("Adagrad%s/wd=%v/lr_decay=%v", prec, wd, decay)] = hashSlices(st[0], st[1])
		}
	}
	for _, wd := range []float64{0, 0.01} {
		for _, centered := range []bool{false, true} {
			for _, mu := range []float64{0, 0.9} {
				h := RMSprop{LR: 1e-2, Alpha: 0.99, Eps: 1e-8, WeightDecay: wd, Momentum: mu, Centered: centered}
				st, gr := goldenData[T](8)
				for i := range st[1] {
					st[1][i], st[2][i], st[3][i] = 0, 0, 0
				}
				c := must(h.Coeffs())
				for step := range goldenSteps {
					goldenOK(rmspropKernel[T]().run(s, &c, [][]T{st[0], gr[step], st[1], st[2], st[3]}))
				}
				hashes[fmt.Sprintf("RMSprop%s/wd=%v/centered=%v/momentum=%v", prec, wd, centered, mu)] = hashSlices(st[0], st[1], st[2], st[3])
			}
		}
	}
	for _, wd := range []float64{0, 0.01} {
		for i, pr := range preludes[:2] {
			h := Adamax{LR: 2e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: wd, Prelude: pr}
			st, gr := goldenData[T](9)
			for i := range st[1] {
				st[1][i], st[2][i] = 0, 0
			}
			for step := range goldenSteps {
				c := must(h.Coeffs(int64(step + 1)))
				goldenOK(adamaxKernel[T]().run(s, &c, [][]T{st[0], gr[step], st[1], st[2]}))
			}
			hashes[fmt.Sprintf("Adamax%s/prelude%d/wd=%v", prec, i, wd)] = hashSlices(st[0], st[1], st[2])
		}
	}
	for _, wd := range []float64{0, 0.01} {
		for i, pr := range preludes[:2] {
			h := Adadelta{LR: 1, Rho: 0.9, Eps: 1e-6, WeightDecay: wd, Prelude: pr}
			st, gr := goldenData[T](10)
			for i := range st[1] {
				st[1][i], st[2][i] = 0, 0
			}
			c := must(h.Coeffs())
			for step := range goldenSteps {
				goldenOK(adadeltaKernel[T]().run(s, &c, [][]T{st[0], gr[step], st[1], st[2]}))
			}
			hashes[fmt.Sprintf("Adadelta%s/prelude%d/wd=%v", prec, i, wd)] = hashSlices(st[0], st[1], st[2])
		}
	}
	for _, wd := range []float64{0, 0.01} {
		for _, dec := range []bool{false, true} {
			if wd == 0 && dec {
				continue
			}
			h := NAdam{LR: 2e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: wd, MomentumDecay: 4e-3, Decoupled: dec}
			st, gr := goldenData[T](9)
			for i := range st[1] {
				st[1][i], st[2][i] = 0, 0
			}
			prod := 1.0
			for step := range goldenSteps {
				t := int64(step + 1)
				prod *= h.Mu(t)
				c := must(h.Coeffs(t, prod))
				goldenOK(nadamKernel[T]().run(s, &c, [][]T{st[0], gr[step], st[1], st[2]}))
			}
			hashes[fmt.Sprintf("NAdam%s/wd=%v/decoupled=%v", prec, wd, dec)] = hashSlices(st[0], st[1], st[2])
		}
	}
	for _, wd := range []float64{0, 0.01} {
		for _, dec := range []bool{false, true} {
			if wd == 0 && dec {
				continue
			}
			h := RAdam{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: wd, Decoupled: dec}
			st, gr := goldenData[T](10)
			for i := range st[1] {
				st[1][i], st[2][i] = 0, 0
			}
			for step := range goldenSteps { // rectified from step 6 on
				c := must(h.Coeffs(int64(step + 1)))
				goldenOK(radamKernel[T]().run(s, &c, [][]T{st[0], gr[step], st[1], st[2]}))
			}
			hashes[fmt.Sprintf("RAdam%s/wd=%v/decoupled=%v", prec, wd, dec)] = hashSlices(st[0], st[1], st[2])
		}
	}
	for _, wd := range []float64{0, 0.01} {
		for _, spago := range []bool{false, true} {
			h := LAMB{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-6, WeightDecay: wd, Spago: spago}
			st, gr := goldenData[T](9)
			clear(st[1])
			clear(st[2])
			// A NaN or ±Inf gradient would make every later Σr² (and, once
			// in p, Σp²) NaN: the sums would hash as NaN.
			for _, g := range gr {
				for i, x := range g {
					if x-x != 0 {
						g[i] = 0
					}
				}
			}
			sums, _ := lambGoldenSteps(s, h, st, gr)
			name := fmt.Sprintf("LAMB%s/wd=%v/spago=%v", prec, wd, spago)
			hashes[name] = hashSlices(st[0], st[1], st[2])
			hashes[name+"/sums"] = hashSlices(sums)
			// DirectionInGrad: p, m, v must hash as above; the gradient of
			// the last step holds that step's r.
			st, _ = goldenData[T](9)
			clear(st[1])
			clear(st[2])
			h.DirectionInGrad = true
			_, last := lambGoldenSteps(s, h, st, gr)
			hashes[fmt.Sprintf("LAMBKeep%s/wd=%v/spago=%v", prec, wd, spago)] = hashSlices(st[0], st[1], st[2], last)
			// Into a buffer (LAMBMomentsTo): the same p, m, v, and the last
			// step's r in the buffer, with the gradients left as they are.
			st, _ = goldenData[T](9)
			clear(st[1])
			clear(st[2])
			h.DirectionInGrad = false
			r := make([]T, len(st[0]))
			for step := range goldenSteps {
				c := must(h.Coeffs(int64(step + 1)))
				pp, rr := golden2(lambPass1To(s, &c, st[0], gr[step], st[1], st[2], r))
				goldenOK(lambPass2Stored(s, &c, st[0], r, LAMBTrust(pp, rr), false))
			}
			hashes[fmt.Sprintf("LAMBTo%s/wd=%v/spago=%v", prec, wd, spago)] = hashSlices(st[0], st[1], st[2], r, gr[len(gr)-1])
		}
	}
	adafactorGolden[T](s, prec, hashes)
	{
		st, _ := goldenData[T](4)
		for step := range goldenSteps {
			goldenOK(scaleKernel[T]().run(s, nil, [][]T{st[0][:goldenN-step]}))
		}
		hashes["Scale"+prec] = hashSlices(st[0])
	}
	{
		// Roof with one, two and three destinations (the length picks).
		st, gr := goldenData[T](6)
		for step := range goldenSteps {
			n := goldenN - step
			goldenOK(roofKernel[T]().run(s, nil, [][]T{gr[step][:n], st[0][:n], st[1][:n], st[2][:n]}))
		}
		hashes["Roof"+prec] = hashSlices(st[0], st[1], st[2])
	}
	{
		st, gr := goldenData[T](5)
		h := &hasher{}
		for step := range goldenSteps {
			x, y := gr[step][step:], st[0][step:]
			switch x := any(x).(type) {
			case []float32:
				y := any(y).([]float32)
				d := golden1(s.DotF32(x, y))
				sq, bad := s.SumSquaresCheckF32(x)
				h.add(d)
				h.add(s.SumSquaresF32(y))
				h.add(sq)
				h.add(b2f(bad))
				h.add(b2f(s.NonFiniteF32(y)))
			case []float64:
				y := any(y).([]float64)
				d := golden1(s.DotF64(x, y))
				sq, bad := s.SumSquaresCheckF64(x)
				h.add(d)
				h.add(s.SumSquaresF64(y))
				h.add(sq)
				h.add(b2f(bad))
				h.add(b2f(s.NonFiniteF64(y)))
			}
		}
		sum := sha256.Sum256(h.b)
		hashes["Reductions"+prec] = hex.EncodeToString(sum[:])
	}
	{
		// SecantDots of the (finite) state streams at shifting offsets and
		// lengths (tails of every length), and once of two steps'
		// gradients, which hold special values.
		st, gr := goldenData[T](6)
		h := &hasher{}
		for step := range goldenSteps {
			m := goldenN - step
			sy, yy := golden2(secantDotsT(s, st[0][step:], st[1][:m], st[2][step/2:step/2+m], st[3][:m]))
			h.add(sy)
			h.add(yy)
		}
		sy, yy := golden2(secantDotsT(s, st[0], st[1], gr[1], gr[0]))
		h.add(sy)
		h.add(yy)
		sum := sha256.Sum256(h.b)
		hashes["SecantDots"+prec] = hex.EncodeToString(sum[:])
	}
	return hashes, fast
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func allGolden(s *Set) golden {
	g := golden{Hashes: map[string]string{}, Fast: map[string][]float64{}}
	h32, f32 := goldenVariants[float32](s)
	h64, f64 := goldenVariants[float64](s)
	for _, m := range []map[string]string{h32, h64, mixedGolden(s)} {
		for k, v := range m {
			g.Hashes[k] = v
		}
	}
	for _, m := range []map[string][]float64{f32, f64} {
		for k, v := range m {
			g.Fast[k] = v
		}
	}
	return g
}

func TestGolden(t *testing.T) {
	t.Parallel() // read-only: overlaps the other long tests on a second core
	if *update {
		g := allGolden(sets[Generic])
		b, err := json.MarshalIndent(g, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(goldenFile), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(goldenFile, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s: %d hashes, %d fast sample sets", goldenFile, len(g.Hashes), len(g.Fast))
	}
	b, err := os.ReadFile(goldenFile)
	if err != nil {
		t.Fatal(err)
	}
	var want golden
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	if bf16IntSet != nil {
		// The integer form of bfloat16 rounding to nearest: only the
		// kernels with half streams differ from the level's own set.
		t.Run(setName(bf16IntSet), func(t *testing.T) {
			got := mixedGolden(bf16IntSet)
			if len(got) == 0 {
				t.Fatal("no hashes of the kernels with half streams")
			}
			for k, h := range got {
				if h != want.Hashes[k] {
					t.Errorf("%s: hash %s, golden %s", k, h, want.Hashes[k])
				}
			}
		})
	}
	levels := append([]*Set{sets[Generic]}, testLevels(t)...)
	for _, s := range levels {
		t.Run(setName(s), func(t *testing.T) {
			got := allGolden(estimatePath(s))
			keys := slices.Sorted(func(yield func(string) bool) {
				for k := range want.Hashes {
					if !yield(k) {
						return
					}
				}
			})
			if len(got.Hashes) != len(want.Hashes) || len(got.Fast) != len(want.Fast) {
				t.Fatalf("golden file has %d hashes and %d sample sets, the code makes %d and %d: regenerate with -update",
					len(want.Hashes), len(want.Fast), len(got.Hashes), len(got.Fast))
			}
			for _, k := range keys {
				if got.Hashes[k] != want.Hashes[k] {
					t.Errorf("%s: hash %s, golden %s", k, got.Hashes[k], want.Hashes[k])
				}
			}
			for k, w := range want.Fast {
				g := got.Fast[k]
				if len(g) != len(w) {
					t.Fatalf("%s: %d samples, golden %d", k, len(g), len(w))
				}
				for i := range w {
					// 50 steps, each within 2⁻²⁰ of the update plus a rounding of p.
					if d := math.Abs(g[i] - w[i]); !(d <= 1e-4*math.Abs(w[i])+1e-9) && !(math.IsNaN(g[i]) && math.IsNaN(w[i])) {
						t.Errorf("%s sample %d: %v, golden %v", k, i, g[i], w[i])
					}
				}
			}
		})
	}
}

// lambGoldenSteps runs the golden LAMB steps of h on st (p, m, v), each on
// a copy of its gradient in gr: the first pass, the trust ratio, the
// second pass that h asks for. It returns every step's Σp² and Σr², and
// the last step's gradient copy (r, with DirectionInGrad).
func lambGoldenSteps[T Float](s *Set, h LAMB, st [4][]T, gr [][]T) (sums []float64, last []T) {
	for step := range goldenSteps {
		c := must(h.Coeffs(int64(step + 1)))
		last = append(last[:0], gr[step]...)
		pp, rr := golden2(lambPass1(s, &c, st[0], last, st[1], st[2]))
		goldenOK(lambSecond(s, &c, [][]T{st[0], last, st[1], st[2]}, LAMBTrust(pp, rr)))
		sums = append(sums, pp, rr)
	}
	return sums, last
}

// goldenOK, golden1 and golden2 stop the run of a refused call (a panic
// that fails the test), so that -update cannot write the hash of a call
// that did nothing into the golden file.
func goldenOK(err error) {
	if err != nil {
		panic(fmt.Sprintf("golden run: %v", err))
	}
}

func golden1[T any](x T, err error) T {
	goldenOK(err)
	return x
}

func golden2[A, B any](a A, b B, err error) (A, B) {
	goldenOK(err)
	return a, b
}
