package optim

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"slices"
	"sync"
	"testing"

	"github.com/fuseopt/fuseopt/internal/paritytest"
)

// memHub is an in-memory collective for R simulated ranks (goroutines of
// one test): AllReduceSum waits for every rank and gives each the sums,
// added in rank order. It checks the optimizer's contract that every
// element is non-zero on one rank at most.
type memHub struct {
	in  chan memMsg
	out []chan []float64
	mu  sync.Mutex
	bad string // the first breach of the contract
}

type memMsg struct {
	rank int
	x    []float64
}

func newMemHub(tb testing.TB, ranks int) *memHub {
	h := &memHub{in: make(chan memMsg), out: make([]chan []float64, ranks)}
	for r := range h.out {
		h.out[r] = make(chan []float64, 1)
	}
	done := make(chan struct{})
	tb.Cleanup(func() {
		close(done)
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.bad != "" {
			tb.Error(h.bad)
		}
	})
	go func() {
		got := make([][]float64, ranks)
		for {
			for range ranks {
				select {
				case m := <-h.in:
					got[m.rank] = m.x
				case <-done:
					return
				}
			}
			sum := make([]float64, len(got[0]))
			for r := range ranks {
				if len(got[r]) != len(sum) {
					h.breach(fmt.Sprintf("AllReduceSum: rank %d passed %d values, rank 0 %d", r, len(got[r]), len(sum)))
				}
				for i := range min(len(sum), len(got[r])) {
					if got[r][i] != 0 && sum[i] != 0 {
						h.breach(fmt.Sprintf("AllReduceSum: element %d is non-zero on two ranks", i))
					}
					sum[i] += got[r][i]
				}
			}
			for r := range ranks {
				h.out[r] <- sum
			}
		}
	}()
	return h
}

func (h *memHub) breach(s string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.bad == "" {
		h.bad = s
	}
}

// reducer returns rank r's Reducer.
func (h *memHub) reducer(r int) Reducer { return memReducer{h, r} }

type memReducer struct {
	h    *memHub
	rank int
}

func (m memReducer) AllReduceSum(x []float64) error {
	m.h.in <- memMsg{m.rank, slices.Clone(x)}
	copy(x, <-m.h.out[m.rank])
	return nil
}

// onRanks runs f for every rank at once and returns the first error.
func onRanks(ranks int, f func(r int) error) error {
	errs := make([]error, ranks)
	var wg sync.WaitGroup
	for r := range ranks {
		wg.Go(func() { errs[r] = f(r) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// shardRun is a sharded optimizer over R simulated ranks: each rank has
// its own copy of the model (as data-parallel processes do).
type shardRun[T Float] struct {
	models []*testModel[T]
	opts   []*Optimizer[T]
}

func newShardRun[T Float](tb testing.TB, m *testModel[T], h Hyper, groups []Hyper, assign []int, op Options, ranks int) *shardRun[T] {
	tb.Helper()
	hub := newMemHub(tb, ranks)
	s := &shardRun[T]{}
	for r := range ranks {
		o := op
		o.Shard = Shard{Rank: r, Ranks: ranks, Reducer: hub.reducer(r)}
		if ranks == 1 {
			o.Shard.Reducer = nil
		}
		opt := mustNew[T](tb, h, o)
		for _, g := range groups {
			if _, err := opt.AddGroup(g); err != nil {
				tb.Fatal(err)
			}
		}
		mr := m.clone()
		mr.register(tb, opt, assign)
		s.models = append(s.models, mr)
		s.opts = append(s.opts, opt)
	}
	return s
}

// poison sets every gradient element that rank r does not own to NaN: a
// shard must never read them.
func (s *shardRun[T]) poison(tb testing.TB) {
	tb.Helper()
	for r, o := range s.opts {
		for t := range s.models[r].grad {
			lo, hi, err := o.ShardSpan(s.models[r].names[t])
			if err != nil {
				tb.Fatal(err)
			}
			g := s.models[r].grad[t]
			for i := range g {
				if i < lo || i >= hi {
					g[i] = T(math.NaN())
				}
			}
		}
	}
}

// gather copies every rank's span of every parameter to the other ranks
// (the all-gather of a data-parallel step).
func (s *shardRun[T]) gather(tb testing.TB) {
	tb.Helper()
	for r, o := range s.opts {
		for t, name := range s.models[r].names {
			lo, hi, err := o.ShardSpan(name)
			if err != nil {
				tb.Fatal(err)
			}
			for q := range s.models {
				if q != r {
					copy(s.models[q].data[t][lo:hi], s.models[r].data[t][lo:hi])
				}
			}
		}
	}
}

// same fails unless every rank's parameters equal ref's and every rank's
// state spans, scalars and step counts equal ref's state, bit for bit.
func (s *shardRun[T]) same(tb testing.TB, ref *Optimizer[T], what string) {
	tb.Helper()
	for r, o := range s.opts {
		for t, name := range s.models[r].names {
			if !bitsEqual(s.models[r].data[t], ref.params[t].data) {
				tb.Fatalf("%s: rank %d of %d: parameter %q differs from the single-process step", what, r, len(s.opts), name)
			}
			p, rp := &o.params[t], &ref.params[t]
			if p.step != rp.step || math.Float64bits(p.sc[0]) != math.Float64bits(rp.sc[0]) {
				tb.Fatalf("%s: rank %d: parameter %q: step %d, scalars %v; single process %d, %v", what, r, name, p.step, p.sc, rp.step, rp.sc)
			}
			for _, buf := range ref.groups[rp.group].buffers() {
				full, err := ref.State(name, buf)
				if err != nil {
					tb.Fatal(err)
				}
				lo, part, err := o.ShardState(name, buf)
				if err != nil {
					tb.Fatal(err)
				}
				if !bitsEqual(part, full[lo:lo+len(part)]) {
					tb.Fatalf("%s: rank %d: state %s of %q over [%d, %d) differs from the single-process state", what, r, buf, name, lo, lo+len(part))
				}
			}
		}
	}
}

// shardCase is one configuration of the sharded-step tests.
type shardCase struct {
	name   string
	h      Hyper
	groups []Hyper // more groups
	assign []int   // the group of each tensor
	policy NonFinitePolicy
	clip   float64 // ClipGradNorm before each step when > 0
	scale  float64 // loss scale (1 when 0)
}

var shardSizes = []int{300, 17, 64, 1000, 5, 129, 1, 250}

func shardCases() []shardCase {
	nadam2 := DefaultNAdam()
	nadam2.Beta1, nadam2.MomentumDecay, nadam2.DecoupledWeightDecay, nadam2.WeightDecay = 0.8, 0.01, true, 0.1
	lamb := DefaultLAMB()
	lamb.WeightDecay = 0.01
	lambSpago := lamb
	lambSpago.Spago = true
	lambGrad := lamb
	lambGrad.DirectionInGrad = true
	lambScratch := lamb
	lambScratch.DirectionInScratch = true
	adam := DefaultAdam()
	adam.AMSGrad, adam.WeightDecay = true, 0.01
	return []shardCase{
		{name: "SGD-nesterov", h: SGDConfig{LR: 0.05, Momentum: 0.9, WeightDecay: 1e-3, Nesterov: true}, clip: 3},
		{name: "SGD-momentum-2groups", h: SGDConfig{LR: 0.05, Momentum: 0.9, Dampening: 0.1},
			groups: []Hyper{SGDConfig{LR: 0.01}}, assign: []int{0, 1, 0, 1, 1, 0, 1, 0}, policy: SkipStep},
		{name: "Adam-amsgrad", h: adam, clip: 2, scale: 8, policy: SkipStep},
		{name: "AdamW", h: DefaultAdamW(), policy: ErrorOnNonFinite},
		{name: "NAdam-2groups", h: DefaultNAdam(), groups: []Hyper{nadam2}, assign: []int{1, 0, 0, 1, 0, 1, 1, 0}, clip: 1, policy: SkipStep},
		{name: "LAMB", h: lamb, clip: 1, policy: SkipStep},
		{name: "LAMB-spago", h: lambSpago, scale: 4},
		{name: "LAMB-direction-in-grad", h: lambGrad, clip: 1, policy: SkipStep},
		{name: "LAMB-direction-in-scratch", h: lambScratch, scale: 2, policy: SkipStep},
		{name: "Adagrad", h: AdagradConfig{LR: 0.1, InitialAccumulatorValue: 0.25, Eps: 1e-10, LRDecay: 0.01}},
	}
}

// TestShardStepExact: a step sharded over 1, 2 and 3 ranks gives every
// rank exactly the single-process parameters, state, scalars, step
// counts, clipping norms and reports, for optimizers of element-wise
// state, of per-parameter scalars (NAdam) and of per-parameter norms that
// span ranks (LAMB); with frozen and gradient-less parameters, groups, a
// loss scale, and a NaN under each policy.
func TestShardStepExact(t *testing.T) {
	for _, c := range shardCases() {
		for _, ranks := range []int{1, 2, 3} {
			t.Run(fmt.Sprintf("%s/f32/R=%d", c.name, ranks), func(t *testing.T) { testShardStep[float32](t, c, ranks) })
			t.Run(fmt.Sprintf("%s/f64/R=%d", c.name, ranks), func(t *testing.T) { testShardStep[float64](t, c, ranks) })
		}
	}
}

func testShardStep[T Float](t *testing.T, c shardCase, ranks int) {
	const steps = 7
	op := Options{ChunkSize: 64, NonFinite: c.policy, Workers: 2, ShardThreshold: -1}
	m := newTestModel[T](shardSizes)
	if c.scale != 0 {
		m.scale = c.scale
	}
	ref := mustNew[T](t, c.h, op)
	for _, g := range c.groups {
		if _, err := ref.AddGroup(g); err != nil {
			t.Fatal(err)
		}
	}
	m.register(t, ref, c.assign)
	sr := newShardRun(t, m, c.h, c.groups, c.assign, op, ranks)
	all := append([]*Optimizer[T]{ref}, sr.opts...)
	if c.scale != 0 {
		for _, o := range all {
			if err := o.SetLossScale(c.scale); err != nil {
				t.Fatal(err)
			}
		}
	}
	for s := range steps {
		m.fillGrads(s)
		for _, mr := range sr.models {
			mr.fillGrads(s)
		}
		if s == 3 && c.policy != Propagate { // a NaN in the last tensor's last element
			last := len(m.grad) - 1
			m.grad[last][len(m.grad[last])-1] = T(math.NaN())
			for _, mr := range sr.models {
				mr.grad[last][len(mr.grad[last])-1] = T(math.NaN())
			}
		}
		if s == 2 { // tensor 3 takes no part in this step, tensor 1 none from here on
			for _, o := range all {
				if err := o.SetNoGrad(m.names[3]); err != nil {
					t.Fatal(err)
				}
				if err := o.SetRequiresGrad(m.names[1], false); err != nil {
					t.Fatal(err)
				}
			}
		}
		sr.poison(t)
		if c.clip > 0 {
			want, errRef := ref.ClipGradNorm(c.clip)
			norms := make([]float64, ranks)
			err := onRanks(ranks, func(r int) error {
				var err error
				norms[r], err = sr.opts[r].ClipGradNorm(c.clip)
				return err
			})
			if (err == nil) != (errRef == nil) {
				t.Fatalf("step %d: ClipGradNorm: sharded %v, single process %v", s, err, errRef)
			}
			for r, n := range norms {
				if math.Float64bits(n) != math.Float64bits(want) {
					t.Fatalf("step %d: rank %d: norm %v, single process %v", s, r, n, want)
				}
			}
		}
		want, errRef := ref.Step()
		reps := make([]StepReport, ranks)
		errs := make([]error, ranks)
		onRanks(ranks, func(r int) error {
			reps[r], errs[r] = sr.opts[r].Step()
			return nil
		})
		for r := range ranks {
			if reps[r] != want || (errs[r] == nil) != (errRef == nil) || (errRef != nil && errs[r].Error() != errRef.Error()) {
				t.Fatalf("step %d: rank %d: %+v, %v; single process %+v, %v", s, r, reps[r], errs[r], want, errRef)
			}
		}
		if s == 3 && c.policy != Propagate && !want.Skipped && errRef == nil {
			t.Fatalf("step 3: the NaN was not seen")
		}
		sr.gather(t)
		sr.same(t, ref, fmt.Sprintf("step %d", s))
	}
}

// TestShardNormExact: the global norm of float64 gradients whose sum of
// squares leaves the float64 range (the scaled path) is the
// single-process norm on every rank.
func TestShardNormExact(t *testing.T) {
	for _, mag := range []float64{1e200, 1e-200, 1} {
		m := newTestModel[float64](shardSizes)
		m.scale = mag
		m.fillGrads(0)
		op := Options{ChunkSize: 64}
		ref := mustNew[float64](t, DefaultAdam(), op)
		m.register(t, ref, nil)
		want, _, errRef := ref.GradNorm()
		for _, ranks := range []int{2, 3} {
			sr := newShardRun(t, m, DefaultAdam(), nil, nil, op, ranks)
			sr.poison(t)
			err := onRanks(ranks, func(r int) error {
				got, finite, err := sr.opts[r].GradNorm()
				if (err == nil) != (errRef == nil) || !finite || math.Float64bits(got) != math.Float64bits(want) {
					return fmt.Errorf("scale %g: rank %d of %d: norm %v, %v, %v; single process %v, %v", mag, r, ranks, got, finite, err, want, errRef)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
}

// refBounds is the assignment rule of shard.go computed with exact
// rationals: chunk j goes to ⌊R·(s_j + w_j/2)/W⌋.
func refBounds(lengths []int, c, ranks int) []int {
	total := 0
	for _, n := range lengths {
		total += n
	}
	b := make([]int, ranks+1)
	for r := range b {
		b[r] = total
	}
	off := 0
	for _, n := range lengths {
		for lo := 0; lo < n; lo += c {
			w := min(c, n-lo)
			mid := new(big.Rat).SetFrac64(int64(2*(off+lo)+w), 2)
			q := new(big.Rat).Mul(mid, new(big.Rat).SetFrac64(int64(ranks), int64(total)))
			r := new(big.Int).Quo(q.Num(), q.Denom()).Int64()
			for k := int(r); k >= 0 && b[k] > off+lo; k-- {
				b[k] = off + lo
			}
		}
		off += n
	}
	b[0] = 0
	return b
}

func TestShardBounds(t *testing.T) {
	for seed := range 300 {
		n := 1 + seed%9
		lengths := make([]int, n)
		for i := range lengths {
			lengths[i] = int(paritytest.SplitMix64(uint64(seed*16+i)) % 700)
		}
		c := 16 * (1 + seed%5)
		for _, ranks := range []int{1, 2, 3, 4, 7, 64} {
			b, err := ShardBounds(lengths, c, ranks)
			if err != nil {
				t.Fatal(err)
			}
			if want := refBounds(lengths, c, ranks); !slices.Equal(b, want) {
				t.Fatalf("lengths %v, chunk %d, %d ranks: %v, want %v", lengths, c, ranks, b, want)
			}
			// Every bound is a chunk boundary, and every rank's share is
			// within one chunk of W/R.
			total := b[ranks]
			for r := range ranks {
				share := float64(b[r+1]-b[r]) - float64(total)/float64(ranks)
				if math.Abs(share) > float64(c) {
					t.Fatalf("lengths %v, chunk %d, %d ranks: rank %d owns %d of %d", lengths, c, ranks, r, b[r+1]-b[r], total)
				}
			}
			for _, x := range b {
				off, ok := 0, x == 0 || x == total
				for _, n := range lengths {
					if x >= off && x < off+n && (x-off)%c == 0 {
						ok = true
					}
					off += n
				}
				if !ok {
					t.Fatalf("lengths %v, chunk %d, %d ranks: bound %d is not a chunk boundary", lengths, c, ranks, x)
				}
			}
		}
	}
	// A huge total does not overflow.
	b, err := ShardBounds([]int{math.MaxInt / 2, math.MaxInt / 2}, int(min(1<<50, uint64(math.MaxInt))), 5)
	if err != nil || b[5] != math.MaxInt/2*2 || !slices.IsSorted(b) {
		t.Fatalf("huge: %v, %v", b, err)
	}
	// Many ranks, empty parameters, ranks beyond the chunks: as the
	// reference, chunk by chunk.
	for seed := range 100 {
		r := paritytest.SplitMix64(uint64(seed) + 1e6)
		lengths := make([]int, 1+r%40)
		for i := range lengths {
			if x := paritytest.SplitMix64(r + uint64(i)); x%3 != 0 {
				lengths[i] = int(x>>8) % 2000
			}
		}
		c := 16 * int(1+r>>32%8)
		ranks := 1 + int(r>>40)%MaxRanks
		b, err := ShardBounds(lengths, c, ranks)
		if err != nil {
			t.Fatal(err)
		}
		if want := refBounds(lengths, c, ranks); !slices.Equal(b, want) {
			t.Fatalf("lengths %v, chunk %d, %d ranks: %v, want %v", lengths, c, ranks, b, want)
		}
	}
	// Parameters of 2⁶⁰ elements in chunks of 16 (2⁵⁶ chunks each) are
	// assigned at once, not chunk by chunk, each rank's share within a
	// chunk of W/R and every bound on a chunk boundary.
	if math.MaxInt > 1<<62 {
		e64 := uint64(1 << 60)
		e := int(e64) // a variable: the constant overflows a 32-bit int
		huge := []int{e, e + 5, 0, e}
		starts := []int{0, e, 2*e + 5, 2*e + 5} // of each parameter
		for _, ranks := range []int{3, MaxRanks} {
			b, err := ShardBounds(huge, 16, ranks)
			if err != nil || b[ranks] != 3*e+5 || !slices.IsSorted(b) {
				t.Fatalf("2⁶⁰ elements, %d ranks: %v, %v", ranks, b, err)
			}
			for r := range ranks {
				if d := float64(b[r+1]-b[r]) - float64(b[ranks])/float64(ranks); math.Abs(d) > 16 {
					t.Fatalf("2⁶⁰ elements, %d ranks: rank %d owns %d", ranks, r, b[r+1]-b[r])
				}
				onChunk := false
				for i, off := range starts {
					if x := b[r]; x >= off && x < off+huge[i] && (x-off)%16 == 0 {
						onChunk = true
					}
				}
				if r > 0 && !onChunk {
					t.Fatalf("2⁶⁰ elements, %d ranks: bound %d is not a chunk boundary", ranks, b[r])
				}
			}
		}
	}
	for _, bad := range []struct{ c, r int }{{15, 2}, {-16, 2}, {16, 0}, {16, MaxRanks + 1}} {
		if _, err := ShardBounds([]int{10}, bad.c, bad.r); !errors.Is(err, ErrInvalid) {
			t.Errorf("chunk %d, ranks %d: %v, want ErrInvalid", bad.c, bad.r, err)
		}
	}
	if _, err := ShardBounds([]int{-1}, 16, 2); !errors.Is(err, ErrInvalid) {
		t.Errorf("negative length: %v", err)
	}
}

func TestShardOptions(t *testing.T) {
	hub := newMemHub(t, 2)
	for _, s := range []Shard{
		{Rank: 0, Ranks: -1},
		{Rank: 2, Ranks: 2, Reducer: hub.reducer(0)},
		{Rank: -1, Ranks: 2, Reducer: hub.reducer(0)},
		{Rank: 0, Ranks: 2},
		{Rank: 1, Ranks: 0},
		{Ranks: MaxRanks + 1, Reducer: hub.reducer(0)},
	} {
		if _, err := New[float32](DefaultAdam(), Options{Shard: s}); !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v: %v, want ErrInvalid", s, err)
		}
	}
	o := mustNew[float32](t, DefaultAdam(), Options{Shard: Shard{Ranks: 1}})
	if got := o.Options().Shard; got.Ranks != 1 || got.Rank != 0 {
		t.Errorf("Options().Shard = %+v", got)
	}
}

// shapedAdam stands for a rule whose buffers follow the tensor's shape
// (Adafactor): sharding refuses it. It is made one of the configs that
// canonical takes (which refuses other types that embed a config).
type shapedAdam struct{ AdamConfig }

func init() { configTypes[reflect.TypeOf(shapedAdam{})] = true }

func (shapedAdam) bufferLen(k int, shape []int) int { return 0 }

func TestShardRefusesShapedState(t *testing.T) {
	if _, err := New[float32](shapedAdam{DefaultAdam()}, Options{Shard: Shard{Ranks: 1}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a shaped rule: %v, want ErrInvalid", err)
	}
	if _, err := New[float32](DefaultAdafactor(), Options{Shard: Shard{Ranks: 1}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Adafactor: %v, want ErrInvalid", err)
	}
	o, err := New[float32](shapedAdam{DefaultAdam()}, Options{})
	if err != nil {
		t.Fatalf("unsharded: %v", err)
	}
	defer o.Close()
	if err := o.Add("p", make([]float32, 8), make([]float32, 8)); err != nil {
		t.Fatal(err)
	}
	// Nor has it shard files.
	var b bytes.Buffer
	if err := o.SaveShard(&b); !errors.Is(err, ErrInvalid) || b.Len() != 0 {
		t.Fatalf("SaveShard: %v, %d bytes", err, b.Len())
	}
	if err := o.LoadShards(&b); !errors.Is(err, ErrInvalid) {
		t.Fatalf("LoadShards: %v", err)
	}
}

// TestShardStateSplit: each rank keeps only its spans: State refuses a
// split parameter, ShardState returns the span, StateBytes adds up to the
// single-process bytes and each rank keeps about 1/R of them.
func TestShardStateSplit(t *testing.T) {
	sizes := []int{4096, 3000, 100, 5000}
	m := newTestModel[float32](sizes)
	h := DefaultAdam()
	h.AMSGrad = true
	ref := mustNew[float32](t, h, Options{ChunkSize: 256})
	m.register(t, ref, nil)
	whole := ref.StateBytes()
	if want := int64(3 * 4 * (4096 + 3000 + 100 + 5000)); whole != want {
		t.Fatalf("single process: %d state bytes, want %d", whole, want)
	}
	for _, ranks := range []int{2, 3, 5} {
		sr := newShardRun(t, m, h, nil, nil, Options{ChunkSize: 256}, ranks)
		var sum int64
		for r, o := range sr.opts {
			b := o.StateBytes()
			sum += b
			if math.Abs(float64(b)-float64(whole)/float64(ranks)) > 3*4*256 {
				t.Errorf("R=%d: rank %d keeps %d state bytes, 1/R is %d", ranks, r, b, whole/int64(ranks))
			}
			if bounds := o.ShardBounds(); len(bounds) != ranks+1 || bounds[ranks] != 12196 {
				t.Errorf("R=%d: ShardBounds = %v", ranks, bounds)
			}
			for _, name := range m.names {
				lo, hi, _ := o.ShardSpan(name)
				_, err := o.State(name, BufExpAvg)
				if all := lo == 0 && hi == ref.params[ref.names[name]].shape[0]; all != (err == nil) {
					t.Errorf("R=%d: rank %d: State(%q) over span [%d, %d): %v", ranks, r, name, lo, hi, err)
				}
				if err != nil && !errors.Is(err, ErrInvalid) {
					t.Errorf("State: %v", err)
				}
			}
		}
		if sum != whole {
			t.Errorf("R=%d: the ranks keep %d state bytes in all, one process %d", ranks, sum, whole)
		}
	}
}

// TestShardAddAfterStep: a sharded optimizer takes parameters until the
// first step (the assignment then moves nothing that lives elsewhere),
// none after, and none between a ClipGradNorm that scaled and the Step.
func TestShardAddAfterStep(t *testing.T) {
	o := mustNew[float32](t, DefaultAdam(), Options{ChunkSize: 16, Shard: Shard{Ranks: 1}})
	a, ga := make([]float32, 40), make([]float32, 40)
	if err := o.Add("a", a, ga); err != nil {
		t.Fatal(err)
	}
	o.ZeroGrad()
	b, gb := make([]float32, 40), make([]float32, 40)
	if err := o.Add("b", b, gb); err != nil {
		t.Fatalf("before a step: %v", err)
	}
	// Between a ClipGradNorm that scaled this rank's chunks and Step (rank
	// 0 of 2, the other contributing zeros): the new assignment would step
	// chunks it did not clip. One rank owns every chunk: taken.
	o2 := mustNew[float32](t, DefaultAdam(), Options{ChunkSize: 16, Shard: Shard{Rank: 0, Ranks: 2, Reducer: &stubReducer{}}})
	for _, oc := range []*Optimizer[float32]{o, o2} {
		x, gx := make([]float32, 40), make([]float32, 40)
		if oc == o2 {
			if err := oc.Add("a", x, gx); err != nil {
				t.Fatal(err)
			}
		}
		for i := range gx {
			ga[i], gb[i], gx[i] = 1, 1, 1
		}
		if _, err := oc.ClipGradNorm(1); err != nil {
			t.Fatal(err)
		}
		d, gd := make([]float32, 40), make([]float32, 40)
		if err := oc.Add("d", d, gd); (oc == o2) != errors.Is(err, ErrInvalid) {
			t.Fatalf("%d ranks, between ClipGradNorm and Step: %v", oc.shard.ranks, err)
		}
		if oc == o2 {
			oc.ZeroGrad()
			if err := oc.Add("d", d, gd); err != nil {
				t.Fatalf("after ZeroGrad: %v", err)
			}
		}
	}
	mustStep(t, o)
	c, gc := make([]float32, 40), make([]float32, 40)
	if err := o.Add("c", c, gc); !errors.Is(err, ErrInvalid) {
		t.Fatalf("after a step: %v, want ErrInvalid", err)
	}
}

// TestShardZeroGrad: ZeroGrad clears the whole gradients, not only the
// rank's chunks.
func TestShardZeroGrad(t *testing.T) {
	m := newTestModel[float32](shardSizes)
	sr := newShardRun(t, m, DefaultAdam(), nil, nil, Options{ChunkSize: 64}, 3)
	for r, o := range sr.opts {
		sr.models[r].fillGrads(0)
		o.ZeroGrad()
		for t2, g := range sr.models[r].grad {
			for i, v := range g {
				if v != 0 || math.Signbit(float64(v)) {
					t.Fatalf("rank %d: grad %d[%d] = %v after ZeroGrad", r, t2, i, v)
				}
			}
		}
	}
}

// stubReducer stands for the other ranks contributing zeros, and rank 0
// its run id at the first Step (runID) of a rank that is not rank 0.
type stubReducer struct {
	calls int
	err   error
}

func (s *stubReducer) AllReduceSum(x []float64) error {
	if s.calls == 0 && len(x) == 1 && x[0] == 0 {
		x[0] = 7
	}
	s.calls++
	return s.err
}

// TestShardStepAllocs: a sharded step, with its exchanges, does not
// allocate after the first.
func TestShardStepAllocs(t *testing.T) {
	red := &stubReducer{}
	m := newTestModel[float32](shardSizes)
	o := mustNew[float32](t, DefaultLAMB(), Options{ChunkSize: 64, NonFinite: SkipStep, Workers: 1, Shard: Shard{Rank: 1, Ranks: 2, Reducer: red}})
	m.register(t, o, nil)
	m.fillGrads(0)
	mustStep(t, o)
	if _, err := o.ClipGradNorm(1); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(20, func() {
		if _, err := o.ClipGradNorm(1); err != nil {
			t.Fatal(err)
		}
		if _, err := o.Step(); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("%v allocations per sharded step", n)
	}
	if red.calls == 0 {
		t.Error("the reducer was never called")
	}
}

// TestShardReducerError: a reducer's error is returned, wrapped; before
// the update (the non-finite check, the norm) nothing has changed.
func TestShardReducerError(t *testing.T) {
	boom := errors.New("network down")
	red := &stubReducer{}
	m := newTestModel[float32](shardSizes)
	o := mustNew[float32](t, DefaultAdam(), Options{ChunkSize: 64, NonFinite: SkipStep, Shard: Shard{Rank: 0, Ranks: 2, Reducer: red}})
	m.register(t, o, nil)
	m.fillGrads(0)
	mustStep(t, o)
	before := snap(t, o)
	red.err = boom
	if _, err := o.Step(); !errors.Is(err, boom) {
		t.Fatalf("Step: %v, want the reducer's error", err)
	}
	if _, err := o.ClipGradNorm(1); !errors.Is(err, boom) {
		t.Fatalf("ClipGradNorm: %v, want the reducer's error", err)
	}
	if !snap(t, o).equal(before) {
		t.Fatal("a failed exchange changed the optimizer")
	}
}

// BenchmarkShardStep times one rank's step of the 4M-parameter benchmark
// model (Adam, float32, one worker) sharded over R ranks, beside the
// unsharded step (R=0): the other ranks contribute zeros through a stub
// Reducer, so that this is the optimizer's share of a data-parallel step
// without the collectives. It reports the rank's state in MiB.
func BenchmarkShardStep(b *testing.B) {
	for _, ranks := range []int{0, 2, 4} {
		b.Run(fmt.Sprintf("R=%d", ranks), func(b *testing.B) {
			op := Options{Workers: 1}
			if ranks > 0 {
				op.Shard = Shard{Rank: 0, Ranks: ranks, Reducer: &stubReducer{}}
			}
			o := benchOptimizer[float32](b, DefaultAdam(), modelSizes(), op)
			b.ReportMetric(float64(o.StateBytes())/(1<<20), "state-MiB")
			benchSteps(b, o, 28) // p, g, m, v read; p, m, v written
		})
	}
}
