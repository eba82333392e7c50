package optim

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"sort"
	"unsafe"

	"github.com/fuseopt/fuseopt/kernels"
)

// 16-bit parameters: bfloat16 and float16 weights and gradients, stepped by
// the mixed-precision kernels (kernels.AdamMasterBF16, kernels.Adam16BF16,
// …) inside the same optimizer as float32 parameters, with the same
// groups, chunks, workers, loss scale, non-finite policies, clipping and
// state files.

// Half says how a 16-bit parameter is stepped (AddBF16, AddF16).
//
// In master-weight mode (the default) a float32 master copy of the
// parameter carries the update: each step reads the 16-bit gradient,
// updates the master and its float32 state, and writes the master and its
// 16-bit copy, in one pass. The master is the caller's (Master) or, when
// Master is nil, the optimizer's, initialised from the 16-bit values when
// the parameter is registered and kept in its state file.
//
// In 16-bit state mode (State16) there is no master: the parameter and
// its state buffers are 16-bit, each value computed in float32 from the
// widened inputs and rounded once.
type Half struct {
	// Group is the parameter's group.
	Group int
	// Master is the caller's float32 master copy, as long as the
	// parameter and overlapping nothing registered; nil lets the
	// optimizer keep one. It must be nil with State16.
	Master []float32
	// State16 keeps the state in the parameter's 16-bit type and updates
	// the 16-bit parameter directly. float16 cannot hold squared
	// gradients: with β2 = 0.999, (1−β2)·g² is below its smallest value
	// for |g| under about 5e-3, the moment stays 0, and the steps come out
	// about 30 times too long; so float16 takes it only for rules without
	// them (AddF16). Round to nearest drops any change of a value below
	// half its spacing (0.2% in bfloat16, more than Adam's 1−β2 = 0.1%
	// decay of v per step, so v stops decaying): use Stochastic with it.
	State16 bool
	// Stochastic rounds every 16-bit value a step writes stochastically
	// (kernels.Rounding) instead of to nearest even. The random bits are
	// keyed by Options.Seed, the parameter's step number, its index in
	// registration order and the element's index, so that the results do
	// not depend on the level, the workers or the chunk size.
	Stochastic bool
}

// halfParam is the 16-bit side of a parameter; param.data is its float32
// master in master-weight mode and nil in 16-bit state mode.
type halfParam struct {
	f16     bool     // float16; bfloat16 otherwise
	p, g    []uint16 // the 16-bit parameter and gradient (the caller's)
	state16 bool
	held    bool // the master is the optimizer's
	sr      bool
	key     uint64 // stochastic rounding key of the step being made
	// seed is the Options.Seed of the rounding that wrote p: of its last
	// step, or of the state file Load read (the loader's own for a
	// version-4 file), or at registration the optimizer's (p then holds
	// exact values, which every seed rounds to themselves) (roundMaster,
	// Save).
	seed uint64
	buf  [3][]uint16
}

// Parameter element types, as ParamInfo.Type names them.
const (
	TypeFloat32  = "float32"
	TypeFloat64  = "float64"
	TypeBFloat16 = "bfloat16"
	TypeFloat16  = "float16"
)

// Modes of a 16-bit parameter, as ParamInfo.Mode names them.
const (
	ModeMasterHeld  = "master"       // float32 master kept by the optimizer
	ModeMasterGiven = "master-given" // float32 master given by the caller
	ModeState16     = "state16"      // 16-bit parameter and state, no master
)

func (h *halfParam) typeName() string {
	if h.f16 {
		return TypeFloat16
	}
	return TypeBFloat16
}

func (h *halfParam) mode() string {
	switch {
	case h.state16:
		return ModeState16
	case h.held:
		return ModeMasterHeld
	}
	return ModeMasterGiven
}

// AddBF16 registers a bfloat16 parameter p, whose bfloat16 gradient the
// caller writes into grad before each Step, in group h.Group, stepped as h
// says. It takes an Optimizer[float32], not sharded, whose rule has 16-bit
// kernels: SGD (with or without momentum), EMA momentum, Adam and AdamW
// (AMSGrad included, Fast not), Lion, Adagrad, RMSprop (not centered),
// Adamax, NAdam and NAdamW; anything else gives an error wrapping ErrInvalid, as does a
// later SetGroup to a rule without them. The rest is as for AddTo: a
// unique name, a shape whose product is len(p), no overlap with anything
// registered, state at its rule's initial value, step count 0.
func (o *Optimizer[T]) AddBF16(name string, p, grad []kernels.BF16, h Half, shape ...int) error {
	return o.addHalf(name, false, asU16(p), asU16(grad), h, shape)
}

// AddF16 registers a float16 (IEEE binary16) parameter, as AddBF16 does.
// Gradients of float16 underflow easily: use a loss scale (SetLossScale),
// which Step folds into its coefficients. 16-bit state (State16) is
// refused (ErrInvalid) for the rules that keep squared gradients (Adam,
// AdamW, NAdam, RMSprop, Adagrad): float16 cannot hold their range (see
// Half.State16); it is taken for SGD, momentum, EMA, Lion and Adamax, whose
// state is as linear in the gradient as the gradient itself, though a
// value below 2⁻²⁴ still rounds to 0 where the loss scale has been
// divided out of it.
func (o *Optimizer[T]) AddF16(name string, p, grad []kernels.F16, h Half, shape ...int) error {
	return o.addHalf(name, true, asU16(p), asU16(grad), h, shape)
}

func asU16[H kernels.BF16 | kernels.F16](x []H) []uint16 {
	if x == nil {
		return nil
	}
	return unsafe.Slice((*uint16)(unsafe.Pointer(unsafe.SliceData(x))), len(x))
}

func asBF16(x []uint16) []kernels.BF16 {
	return unsafe.Slice((*kernels.BF16)(unsafe.SliceData(x)), len(x))
}

func asF16(x []uint16) []kernels.F16 {
	return unsafe.Slice((*kernels.F16)(unsafe.SliceData(x)), len(x))
}

// asF32 returns x as the float32 slice it is (T is float32 wherever a
// parameter has a 16-bit side).
func asF32[T Float](x []T) []float32 {
	if x == nil {
		return nil
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(x))), len(x))
}

// CheckHalf reports whether a 16-bit parameter of the type H steps by h:
// in master-weight mode (state16 false: AddBF16 or AddF16 without
// Half.State16, KernelStepMaster) or in 16-bit state mode (state16 true:
// Half.State16, KernelStep16). It returns nil where the 16-bit kernels
// take h and the state (float32 in master-weight mode, H in 16-bit state
// mode) holds its initial values, and otherwise the error AddBF16 or
// AddF16 gives: one wrapping ErrInvalid for a rule without 16-bit kernels
// (LAMB, Fast Adam, centered RMSprop, ...) or for float16 state of
// squared gradients, ErrHyper for hyperparameters h.Validate refuses or an
// initial state value the state's type cannot hold. Whether the
// coefficients of a step fit float32 is Coefficients' to say, step by
// step (New[float32] checks the whole range of steps at once). A caller
// that keeps the state itself (a stack's adapter) asks CheckHalf once,
// when it builds the step.
func CheckHalf[H kernels.BF16 | kernels.F16](h Hyper, state16 bool) error {
	var zero H
	_, f16 := any(zero).(kernels.F16)
	_, err := checkHalf(h, state16, f16)
	return err
}

// checkHalf is CheckHalf for a 16-bit type given by f16 (float16, else
// bfloat16); it returns the canonical h. The stateless 16-bit steps make
// the same checks (halfStepChecks).
func checkHalf(h Hyper, state16, f16 bool) (Hyper, error) {
	h, err := canonical(h)
	if err != nil {
		return nil, err
	}
	if err := h.Validate(); err != nil {
		return nil, err
	}
	if !state16 {
		if err := initialIn[float32](h); err != nil {
			return nil, err
		}
	}
	if err := halfFits(h, state16, f16); err != nil {
		return nil, err
	}
	return h, nil
}

// halfFits is CheckHalf for a canonical, valid h (f16: float16, else
// bfloat16).
func halfFits(h Hyper, state16, f16 bool) error {
	if err := halfKernel(h); err != nil {
		return err
	}
	if state16 {
		return state16Fits(h, f16)
	}
	return nil
}

// halfKernel reports whether the 16-bit kernels step rule h.
func halfKernel(h Hyper) error {
	if _, red := reductionOf(h); !red {
		switch k := h.kernel(); {
		case halfOpsBF16.master[k] != nil:
			return nil
		case k == kernelAdamFast:
			return fmt.Errorf("%w: 16-bit parameters have no Fast Adam kernel", ErrInvalid)
		case k == kernelRMSpropCentered:
			return fmt.Errorf("%w: 16-bit parameters have no centered RMSprop kernel", ErrInvalid)
		}
	}
	return fmt.Errorf("%w: 16-bit parameters are stepped by SGD (with or without momentum), EMA, Adam, AdamW, Lion, Adagrad, RMSprop (not centered), Adamax, NAdam and NAdamW, not %v", ErrInvalid, h.Kind())
}

func (o *Optimizer[T]) addHalf(name string, f16 bool, p, g []uint16, h Half, shape []int) error {
	if err := o.usable(); err != nil {
		return err
	}
	if err := o.notUnscaled(name); err != nil {
		return err
	}
	if o.ops.size != 4 {
		return fmt.Errorf("%w: parameter %q: 16-bit parameters need an Optimizer[float32]", ErrInvalid, name)
	}
	if o.shard != nil {
		return fmt.Errorf("%w: parameter %q: a sharded optimizer takes no 16-bit parameters", ErrInvalid, name)
	}
	if h.Group < 0 || h.Group >= len(o.groups) {
		return o.groupErr(h.Group)
	}
	if h.State16 && h.Master != nil {
		return fmt.Errorf("%w: parameter %q: a 16-bit state parameter has no master", ErrInvalid, name)
	}
	if err := halfFits(o.groups[h.Group], h.State16, f16); err != nil {
		return fmt.Errorf("parameter %q: %w", name, err)
	}
	if len(g) != len(p) {
		return fmt.Errorf("%w: parameter %q: len(grad) = %d, len(data) = %d", ErrLength, name, len(g), len(p))
	}
	if h.Master != nil && len(h.Master) != len(p) {
		return fmt.Errorf("%w: parameter %q: len(master) = %d, len(data) = %d", ErrLength, name, len(h.Master), len(p))
	}
	shape, err := o.checkParam(name, len(p), shape)
	if err != nil {
		return err
	}
	mine := []memSpan{memOf(p), memOf(g), memOf(h.Master)}
	for i, a := range mine {
		for _, b := range mine[i+1:] {
			if a.overlaps(b) {
				return fmt.Errorf("%w: parameter %q: its slices overlap", ErrInvalid, name)
			}
		}
	}
	if j := o.reg.find(mine); j >= 0 {
		return fmt.Errorf("%w: parameter %q overlaps parameter %q", ErrInvalid, name, o.params[j].name)
	}
	hp := &halfParam{f16: f16, p: p[:len(p):len(p)], g: g[:len(g):len(g)], state16: h.State16, sr: h.Stochastic, seed: o.opt.Seed}
	var data []T
	switch {
	case h.State16:
	case h.Master != nil:
		data = unsafe.Slice((*T)(unsafe.Pointer(unsafe.SliceData(h.Master))), len(h.Master))
		data = data[:len(data):len(data)]
	default:
		hp.held = true
		data = make([]T, len(p)) // moved into the slab by layout
		widen16(f16, asF32(data), p)
	}
	o.params = append(o.params, param[T]{
		name:  name,
		group: h.Group,
		shape: shape,
		data:  data,
		half:  hp,
		sc:    initialScalarsOf(o.groups[h.Group]),
	})
	o.reg.add(len(o.params)-1, mine)
	o.names[name] = len(o.params) - 1
	o.dirty = true
	return nil
}

// memSpan is the memory of a slice, [lo, hi) in bytes, for the overlap
// checks; the zero memSpan is that of an empty slice.
type memSpan struct{ lo, hi uintptr }

func memOf[E any](x []E) memSpan {
	if len(x) == 0 {
		return memSpan{}
	}
	var z E
	lo := uintptr(unsafe.Pointer(unsafe.SliceData(x)))
	return memSpan{lo, lo + uintptr(len(x))*unsafe.Sizeof(z)}
}

func (a memSpan) overlaps(b memSpan) bool {
	return a.lo < a.hi && b.lo < b.hi && a.lo < b.hi && b.lo < a.hi
}

// regSpan is a span of memory that the caller registered for parameter
// param (for Newton's blocks: the memory of block param's W).
type regSpan struct {
	memSpan
	param int
}

// spanSet holds the memory spans that a caller registered, each with the
// index of its parameter: disjoint and sorted by start, so their ends are
// sorted too, and the only one that may overlap a span s is the first that
// ends after s starts. find is a binary search (a scan of every parameter
// made registering n parameters take n² steps: 25 s for 20,000).
type spanSet []regSpan

// find returns the index of a registered parameter whose memory overlaps
// one of spans, or -1.
func (r spanSet) find(spans []memSpan) int {
	for _, s := range spans {
		if s.lo >= s.hi {
			continue
		}
		i := sort.Search(len(r), func(i int) bool { return r[i].hi > s.lo })
		if i < len(r) && r[i].lo < s.hi {
			return r[i].param
		}
	}
	return -1
}

// add records the spans of parameter i, which overlap neither each other
// nor those registered.
func (r *spanSet) add(i int, spans []memSpan) {
	for _, s := range spans {
		if s.lo >= s.hi {
			continue
		}
		at := sort.Search(len(*r), func(k int) bool { return (*r)[k].lo >= s.lo })
		*r = slices.Insert(*r, at, regSpan{s, i})
	}
}

// len returns the number of elements of p.
func (p *param[T]) len() int {
	if p.half != nil {
		return len(p.half.p)
	}
	return len(p.data)
}

// widen16 writes the float32 values of the 16-bit x into dst.
func widen16(f16 bool, dst []float32, x []uint16) {
	dst = dst[:len(x)]
	if f16 {
		for i, u := range x {
			dst[i] = kernels.F16(u).Float32()
		}
		return
	}
	for i, u := range x {
		dst[i] = math.Float32frombits(uint32(u) << 16)
	}
}

// nonFinite16 reports whether any 16-bit value of x is NaN or ±Inf: its
// exponent field all ones (0x7f80 for bfloat16, 0x7c00 for float16),
// tested four values per 64-bit word.
func nonFinite16(f16 bool, x []uint16) bool {
	e := uint64(0x7f80)
	if f16 {
		e = 0x7c00
	}
	const lanes = 0x0001000100010001
	m := e * lanes
	i := 0
	for ; i+4 <= len(x); i += 4 {
		w := uint64(x[i]) | uint64(x[i+1])<<16 | uint64(x[i+2])<<32 | uint64(x[i+3])<<48
		t := (w & m) ^ m // a lane is zero where the exponent is all ones
		if (t-lanes)&^t&(0x8000*lanes) != 0 {
			return true
		}
	}
	for ; i < len(x); i++ {
		if uint64(x[i])&e == e {
			return true
		}
	}
	return false
}

// scale16 multiplies each 16-bit value of x by f, then by then unless it
// is 1: widened to float32, multiplied in float32 (each product rounded to
// float32, as the float32 gradient's Scale passes round), rounded to the
// 16-bit type once, to nearest even.
func scale16(f16 bool, x []uint16, f, then float32) {
	mul := func(v float32) float32 {
		v *= f
		if then != 1 {
			v *= then
		}
		return v
	}
	if f16 {
		for i, u := range x {
			x[i] = uint16(kernels.F16FromF32(mul(kernels.F16(u).Float32())))
		}
		return
	}
	if then == 1 { // (UnscaleGrads, Step's unscaling: no closure, a tight loop)
		for i, u := range x {
			x[i] = uint16(kernels.BF16FromF32(math.Float32frombits(uint32(u)<<16) * f))
		}
		return
	}
	for i, u := range x {
		x[i] = uint16(kernels.BF16FromF32(mul(math.Float32frombits(uint32(u) << 16))))
	}
}

// halfGradSumSq returns the sum of squares of elements lo to hi of h's
// gradient, and whether one is not finite: kernels.SumSquaresCheck of
// their float32 values, widened into buf (as long as a chunk), so that a
// 16-bit gradient has exactly the norm of the float32 gradient holding its
// values.
func halfGradSumSq(set *kernels.Set, h *halfParam, buf []float32, lo, hi int) (float64, bool) {
	var sum float64
	bad := false
	for a := lo; a < hi; a += len(buf) {
		b := min(a+len(buf), hi)
		w := buf[:b-a]
		widen16(h.f16, w, h.g[a:b])
		s, nf := set.SumSquaresCheckF32(w)
		sum += s
		bad = bad || nf
	}
	return sum, bad
}

// halfOps holds the 16-bit kernels of one half type H by rule kernel:
// master[k] runs the master-weight kernel on a chunk (the float32 master
// p, the 16-bit copy p16 and gradient g, the float32 state buffers in the
// rule's order), state16[k] the 16-bit-state kernel. A nil state buffer is
// one the rule does not keep (AMSGrad's, RMSprop's momentum buffer).
type halfOps[H kernels.BF16 | kernels.F16] struct {
	master  [numKernels]func(s *kernels.Set, c *kernels.Coeffs, p []float32, p16, g []H, b [3][]float32, r kernels.Rounding) error
	state16 [numKernels]func(s *kernels.Set, c *kernels.Coeffs, p, g []H, b [3][]H, r kernels.Rounding) error
}

var halfOpsBF16 = halfOps[kernels.BF16]{
	master: [numKernels]func(*kernels.Set, *kernels.Coeffs, []float32, []kernels.BF16, []kernels.BF16, [3][]float32, kernels.Rounding) error{
		kernelSGD: func(s *kernels.Set, c *kernels.Coeffs, p []float32, p16, g []kernels.BF16, b [3][]float32, r kernels.Rounding) error {
			return s.SGDMasterBF16(c, p, p16, g, r)
		},
		kernelMomentum: func(s *kernels.Set, c *kernels.Coeffs, p []float32, p16, g []kernels.BF16, b [3][]float32, r kernels.Rounding) error {
			return s.MomentumMasterBF16(c, p, p16, g, b[0], r)
		},
		kernelAdam: func(s *kernels.Set, c *kernels.Coeffs, p []float32, p16, g []kernels.BF16, b [3][]float32, r kernels.Rounding) error {
			return s.AdamMasterBF16(c, p, p16, g, b[0], b[1], b[2], r)
		},
		kernelLion: func(s *kernels.Set, c *kernels.Coeffs, p []float32, p16, g []kernels.BF16, b [3][]float32, r kernels.Rounding) error {
			return s.LionMasterBF16(c, p, p16, g, b[0], r)
		},
		kernelAdagrad: func(s *kernels.Set, c *kernels.Coeffs, p []float32, p16, g []kernels.BF16, b [3][]float32, r kernels.Rounding) error {
			return s.AdagradMasterBF16(c, p, p16, g, b[0], r)
		},
		kernelRMSprop: func(s *kernels.Set, c *kernels.Coeffs, p []float32, p16, g []kernels.BF16, b [3][]float32, r kernels.Rounding) error {
			return s.RMSpropMasterBF16(c, p, p16, g, b[0], b[1], r)
		},
		kernelAdamax: func(s *kernels.Set, c *kernels.Coeffs, p []float32, p16, g []kernels.BF16, b [3][]float32, r kernels.Rounding) error {
			return s.AdamaxMasterBF16(c, p, p16, g, b[0], b[1], r)
		},
		kernelNAdam: func(s *kernels.Set, c *kernels.Coeffs, p []float32, p16, g []kernels.BF16, b [3][]float32, r kernels.Rounding) error {
			return s.NAdamMasterBF16(c, p, p16, g, b[0], b[1], r)
		},
	},
	state16: [numKernels]func(*kernels.Set, *kernels.Coeffs, []kernels.BF16, []kernels.BF16, [3][]kernels.BF16, kernels.Rounding) error{
		kernelSGD: func(s *kernels.Set, c *kernels.Coeffs, p, g []kernels.BF16, b [3][]kernels.BF16, r kernels.Rounding) error {
			return s.SGD16BF16(c, p, g, r)
		},
		kernelMomentum: func(s *kernels.Set, c *kernels.Coeffs, p, g []kernels.BF16, b [3][]kernels.BF16, r kernels.Rounding) error {
			return s.Momentum16BF16(c, p, g, b[0], r)
		},
		kernelAdam: func(s *kernels.Set, c *kernels.Coeffs, p, g []kernels.BF16, b [3][]kernels.BF16, r kernels.Rounding) error {
			return s.Adam16BF16(c, p, g, b[0], b[1], b[2], r)
		},
		kernelLion: func(s *kernels.Set, c *kernels.Coeffs, p, g []kernels.BF16, b [3][]kernels.BF16, r kernels.Rounding) error {
			return s.Lion16BF16(c, p, g, b[0], r)
		},
		kernelAdagrad: func(s *kernels.Set, c *kernels.Coeffs, p, g []kernels.BF16, b [3][]kernels.BF16, r kernels.Rounding) error {
			return s.Adagrad16BF16(c, p, g, b[0], r)
		},
		kernelRMSprop: func(s *kernels.Set, c *kernels.Coeffs, p, g []kernels.BF16, b [3][]kernels.BF16, r kernels.Rounding) error {
			return s.RMSprop16BF16(c, p, g, b[0], b[1], r)
		},
		kernelAdamax: func(s *kernels.Set, c *kernels.Coeffs, p, g []kernels.BF16, b [3][]kernels.BF16, r kernels.Rounding) error {
			return s.Adamax16BF16(c, p, g, b[0], b[1], r)
		},
		kernelNAdam: func(s *kernels.Set, c *kernels.Coeffs, p, g []kernels.BF16, b [3][]kernels.BF16, r kernels.Rounding) error {
			return s.NAdam16BF16(c, p, g, b[0], b[1], r)
		},
	},
}

var halfOpsF16 = halfOps[kernels.F16]{
	master: [numKernels]func(*kernels.Set, *kernels.Coeffs, []float32, []kernels.F16, []kernels.F16, [3][]float32, kernels.Rounding) error{
		kernelSGD: func(s *kernels.Set, c *kernels.Coeffs, p []float32, p16, g []kernels.F16, b [3][]float32, r kernels.Rounding) error {
			return s.SGDMasterF16(c, p, p16, g, r)
		},
		kernelMomentum: func(s *kernels.Set, c *kernels.Coeffs, p []float32, p16, g []kernels.F16, b [3][]float32, r kernels.Rounding) error {
			return s.MomentumMasterF16(c, p, p16, g, b[0], r)
		},
		kernelAdam: func(s *kernels.Set, c *kernels.Coeffs, p []float32, p16, g []kernels.F16, b [3][]float32, r kernels.Rounding) error {
			return s.AdamMasterF16(c, p, p16, g, b[0], b[1], b[2], r)
		},
		kernelLion: func(s *kernels.Set, c *kernels.Coeffs, p []float32, p16, g []kernels.F16, b [3][]float32, r kernels.Rounding) error {
			return s.LionMasterF16(c, p, p16, g, b[0], r)
		},
		kernelAdagrad: func(s *kernels.Set, c *kernels.Coeffs, p []float32, p16, g []kernels.F16, b [3][]float32, r kernels.Rounding) error {
			return s.AdagradMasterF16(c, p, p16, g, b[0], r)
		},
		kernelRMSprop: func(s *kernels.Set, c *kernels.Coeffs, p []float32, p16, g []kernels.F16, b [3][]float32, r kernels.Rounding) error {
			return s.RMSpropMasterF16(c, p, p16, g, b[0], b[1], r)
		},
		kernelAdamax: func(s *kernels.Set, c *kernels.Coeffs, p []float32, p16, g []kernels.F16, b [3][]float32, r kernels.Rounding) error {
			return s.AdamaxMasterF16(c, p, p16, g, b[0], b[1], r)
		},
		kernelNAdam: func(s *kernels.Set, c *kernels.Coeffs, p []float32, p16, g []kernels.F16, b [3][]float32, r kernels.Rounding) error {
			return s.NAdamMasterF16(c, p, p16, g, b[0], b[1], r)
		},
	},
	state16: [numKernels]func(*kernels.Set, *kernels.Coeffs, []kernels.F16, []kernels.F16, [3][]kernels.F16, kernels.Rounding) error{
		kernelSGD: func(s *kernels.Set, c *kernels.Coeffs, p, g []kernels.F16, b [3][]kernels.F16, r kernels.Rounding) error {
			return s.SGD16F16(c, p, g, r)
		},
		kernelMomentum: func(s *kernels.Set, c *kernels.Coeffs, p, g []kernels.F16, b [3][]kernels.F16, r kernels.Rounding) error {
			return s.Momentum16F16(c, p, g, b[0], r)
		},
		kernelAdam: func(s *kernels.Set, c *kernels.Coeffs, p, g []kernels.F16, b [3][]kernels.F16, r kernels.Rounding) error {
			return s.Adam16F16(c, p, g, b[0], b[1], b[2], r)
		},
		kernelLion: func(s *kernels.Set, c *kernels.Coeffs, p, g []kernels.F16, b [3][]kernels.F16, r kernels.Rounding) error {
			return s.Lion16F16(c, p, g, b[0], r)
		},
		kernelAdagrad: func(s *kernels.Set, c *kernels.Coeffs, p, g []kernels.F16, b [3][]kernels.F16, r kernels.Rounding) error {
			return s.Adagrad16F16(c, p, g, b[0], r)
		},
		kernelRMSprop: func(s *kernels.Set, c *kernels.Coeffs, p, g []kernels.F16, b [3][]kernels.F16, r kernels.Rounding) error {
			return s.RMSprop16F16(c, p, g, b[0], b[1], r)
		},
		kernelAdamax: func(s *kernels.Set, c *kernels.Coeffs, p, g []kernels.F16, b [3][]kernels.F16, r kernels.Rounding) error {
			return s.Adamax16F16(c, p, g, b[0], b[1], r)
		},
		kernelNAdam: func(s *kernels.Set, c *kernels.Coeffs, p, g []kernels.F16, b [3][]kernels.F16, r kernels.Rounding) error {
			return s.NAdam16F16(c, p, g, b[0], b[1], r)
		},
	},
}

// runHalf steps elements lo to hi of the 16-bit parameter p with
// coefficient block c.
func runHalf[T Float](set *kernels.Set, c *kernels.Coeffs, p *param[T], lo, hi int) error {
	h := p.half
	if h.f16 {
		return runHalfAs(&halfOpsF16, asF16, set, c, p, lo, hi)
	}
	return runHalfAs(&halfOpsBF16, asBF16, set, c, p, lo, hi)
}

func runHalfAs[H kernels.BF16 | kernels.F16, T Float](ops *halfOps[H], as func([]uint16) []H, set *kernels.Set, c *kernels.Coeffs, p *param[T], lo, hi int) error {
	h := p.half
	r := kernels.Rounding{Stochastic: h.sr, Key: h.key, Offset: lo}
	if h.state16 {
		var b [3][]H
		for k, x := range h.buf {
			if x != nil {
				b[k] = as(x[lo:hi])
			}
		}
		if f := ops.state16[p.op]; f != nil {
			return f(set, c, as(h.p[lo:hi]), as(h.g[lo:hi]), b, r)
		}
	} else {
		var b [3][]float32
		for k := range b {
			b[k] = asF32(sub(p.buf[:], k, lo-p.soff, hi-p.soff))
		}
		if f := ops.master[p.op]; f != nil {
			return f(set, c, asF32(p.data[lo:hi]), as(h.p[lo:hi]), as(h.g[lo:hi]), b, r)
		}
	}
	return fmt.Errorf("%w: no 16-bit kernel for kernel %d", ErrInvalid, p.op)
}

// roundMaster writes the 16-bit parameter from its float32 master as the
// master-weight kernels write it (their 16-bit copy of p is output stream
// 1), rounding stochastically with key when the parameter does.
func (h *halfParam) roundMaster(master []float32, key uint64) {
	for i, x := range master {
		switch {
		case h.sr && h.f16:
			h.p[i] = uint16(kernels.F16SR(x, kernels.SRBits(key, 1, i)))
		case h.sr:
			h.p[i] = uint16(kernels.BF16SR(x, kernels.SRBits(key, 1, i)))
		case h.f16:
			h.p[i] = uint16(kernels.F16FromF32(x))
		default:
			h.p[i] = uint16(kernels.BF16FromF32(x))
		}
	}
}

// Master returns a copy of the float32 master weights of the 16-bit
// parameter name (kept by the optimizer or given by the caller).
func (o *Optimizer[T]) Master(name string) ([]float32, error) {
	i, ok := o.names[name]
	if !ok {
		return nil, fmt.Errorf("%w: no parameter %q", ErrInvalid, name)
	}
	p := &o.params[i]
	if p.half == nil || p.half.state16 {
		return nil, fmt.Errorf("%w: parameter %q has no master weights", ErrInvalid, name)
	}
	return append([]float32(nil), asF32(p.data)...), nil
}

// SyncMaster sets the master weights that the optimizer keeps for the
// 16-bit parameter name to the float32 values of its 16-bit weights now,
// for a caller that changed the 16-bit weights itself (loaded a model,
// say): otherwise the next Step (or Load) writes the old master over them. A
// parameter whose master is the caller's, or that has none, gives an
// error wrapping ErrInvalid.
func (o *Optimizer[T]) SyncMaster(name string) error {
	if err := o.usable(); err != nil {
		return err
	}
	i, ok := o.names[name]
	if !ok {
		return fmt.Errorf("%w: no parameter %q", ErrInvalid, name)
	}
	p := &o.params[i]
	if p.half == nil || !p.half.held {
		return fmt.Errorf("%w: parameter %q has no master kept by the optimizer", ErrInvalid, name)
	}
	widen16(p.half.f16, asF32(p.data), p.half.p)
	return nil
}

// State16 returns a copy of the 16-bit state buffer buf of the 16-bit
// state parameter name, as the raw bits of its type (ParamInfo.Type).
func (o *Optimizer[T]) State16(name, buf string) ([]uint16, error) {
	i, ok := o.names[name]
	if !ok {
		return nil, fmt.Errorf("%w: no parameter %q", ErrInvalid, name)
	}
	p := &o.params[i]
	if p.half == nil || !p.half.state16 {
		return nil, fmt.Errorf("%w: parameter %q has no 16-bit state (State returns its state)", ErrInvalid, name)
	}
	o.prepare()
	for k, b := range paramBuffers(o.groups[p.group], p.shape) {
		if b == buf {
			out := make([]uint16, p.len())
			copy(out, p.half.buf[k])
			return out, nil
		}
	}
	return nil, fmt.Errorf("%w: parameter %q has no state %q", ErrInvalid, name, buf)
}

// BufMaster is the name, in a state file, of the float32 master weights
// that the optimizer keeps for a 16-bit parameter.
const BufMaster = "master"

// hasHalf reports whether a parameter is 16-bit.
func (o *Optimizer[T]) hasHalf() bool {
	for i := range o.params {
		if o.params[i].half != nil {
			return true
		}
	}
	return false
}

// halfCodes returns the type and mode codes of a parameter in a version-5
// state file (modeStochastic set in mode for stochastic rounding).
func halfCodes(h *halfParam) (typ, mode uint8) {
	if h == nil {
		return 0, 0
	}
	typ = 1
	if h.f16 {
		typ = 2
	}
	switch {
	case h.held:
		mode = 1
	case h.state16:
		mode = 3
	default:
		mode = 2
	}
	if h.sr {
		mode |= modeStochastic
	}
	return typ, mode
}

// initial16 returns the initial value of buffer k of rule h in a 16-bit
// state buffer: the rule's initial value (zero but for Adagrad's
// initial_accumulator_value) rounded to nearest even.
func initial16(h Hyper, k int, f16 bool) uint16 {
	v := float32(h.initial(k))
	if f16 {
		return uint16(kernels.F16FromF32(v))
	}
	return uint16(kernels.BF16FromF32(v))
}

// state16Fits refuses a rule whose state a 16-bit state buffer of the
// type cannot hold:
//
//   - in binary16 (ErrInvalid), a buffer of squared gradients (Adam's and
//     NAdam's exp_avg_sq and max_exp_avg_sq, RMSprop's square_avg,
//     Adagrad's sum). Their range is the square of the gradients': with
//     β2 = 0.999, (1−β2)·g² rounds to 0 for |g| below about 5e-3 (to
//     nearest; 5e-4 stochastically), and the step, made from the float32
//     moment of one step over a bias correction for many, comes out about
//     30 times too long; |g| above about 8e3 makes the moment +Inf for
//     good. bfloat16 has float32's range and holds them.
//   - a finite initial value that overflows the type to ±Inf (ErrHyper;
//     Adagrad's initial_accumulator_value above 3.4e38 in bfloat16: every
//     step would divide by an infinite root, and the parameter would never
//     move). A value below the type's smallest subnormal rounds to 0, as
//     any value does.
func state16Fits(h Hyper, f16 bool) error {
	if f16 {
		for _, name := range h.buffers() {
			switch name {
			case BufExpAvgSq, BufMaxExpAvgSq, BufSquareAvg, BufSum:
				return fmt.Errorf("%w: %v keeps squared gradients (%s), which float16 state cannot hold (they underflow to 0 below |g| ≈ 5e-3, and the steps grow about 30×): keep its state in float32 (Half without State16) or use bfloat16", ErrInvalid, h.Kind(), name)
			}
		}
	}
	for k, name := range h.buffers() {
		v := h.initial(k)
		if math.IsInf(v, 0) || v != v {
			continue // not finite already: Validate's to refuse
		}
		u := initial16(h, k, f16)
		if (f16 && u&0x7fff == 0x7c00) || (!f16 && u&0x7fff == 0x7f80) {
			typ := TypeBFloat16
			if f16 {
				typ = TypeFloat16
			}
			return fmt.Errorf("%w: the initial value %g of %s overflows %s state", ErrHyper, v, name, typ)
		}
	}
	return nil
}

// fillInitial16 sets every element of the 16-bit buffer b to initial16.
func fillInitial16(h Hyper, k int, f16 bool, b []uint16) {
	v := initial16(h, k, f16)
	for i := range b {
		b[i] = v
	}
}

// writeHalfElems writes n 16-bit elements of x, or n copies of init when
// x is nil.
func writeHalfElems(e *encoder, x []uint16, n int, init uint16) {
	var scratch [1 << 12]byte
	for lo := 0; lo < n && e.err == nil; lo += len(scratch) / 2 {
		hi := min(lo+len(scratch)/2, n)
		b := scratch[:0]
		for i := lo; i < hi; i++ {
			v := init
			if x != nil {
				v = x[i]
			}
			b = binary.LittleEndian.AppendUint16(b, v)
		}
		e.bytes(b)
	}
}

// readHalfElems reads len(x) 16-bit elements into x.
func readHalfElems(d *decoder, x []uint16, scratch []byte) {
	per := len(scratch) / 2
	for lo := 0; lo < len(x) && d.err == nil; lo += per {
		hi := min(lo+per, len(x))
		b := scratch[:(hi-lo)*2]
		d.read(b)
		for i := lo; i < hi; i++ {
			x[i] = binary.LittleEndian.Uint16(b[(i-lo)*2:])
		}
	}
}

// sameHalf reports whether the 16-bit side h of a registered parameter is
// of the type and mode codes of a state file (mode without
// modeStochastic), and of its rounding sr when the file records it
// (known).
func sameHalf(h *halfParam, typ, mode uint8, sr, known bool) bool {
	t, m := halfCodes(h)
	return t == typ && m&^modeStochastic == mode && (!known || (m&modeStochastic != 0) == sr)
}

// halfDesc describes type and mode codes for an error: mode with or
// without modeStochastic (which sets sr), and the rounding when known.
func halfDesc(typ, mode uint8, srKnown ...bool) string {
	sr, known := mode&modeStochastic != 0, true
	if len(srKnown) == 2 {
		sr, known = srKnown[0], srKnown[1]
	}
	mode &^= modeStochastic
	t := [...]string{"of the optimizer's type", TypeBFloat16, TypeFloat16}[typ]
	m := [...]string{"", " with a master kept by the optimizer", " with the caller's master", " with 16-bit state"}[mode]
	switch {
	case typ == 0 || !known:
	case sr:
		m += ", rounded stochastically"
	default:
		m += ", rounded to nearest"
	}
	return t + m
}

// checkHalfBuffers checks loaded 16-bit state buffers as checkBuffers
// checks float32 ones, on their float32 values (before the first step:
// the rule's initial values rounded to 16 bits).
func checkHalfBuffers(h Hyper, names []string, bufs [][]uint16, f16 bool, step int64) error {
	if step == 0 {
		for k, b := range bufs {
			init := initial16(h, k, f16)
			for i, x := range b {
				if x != init {
					return fmt.Errorf("%s[%d] = %#04x before the first step, want %#04x", names[k], i, x, init)
				}
			}
		}
		return nil
	}
	w := make([][]float32, len(bufs))
	for k, b := range bufs {
		w[k] = make([]float32, len(b))
		widen16(f16, w[k], b)
	}
	return checkBuffers(h, names, w, step)
}
