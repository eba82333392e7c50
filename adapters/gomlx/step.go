package fusegomlx

import (
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
	"unsafe"
	"weak"

	"github.com/fuseopt/fuseopt/kernels"
	"github.com/fuseopt/fuseopt/optim"
	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/dtypes/bfloat16"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
)

// step updates every variable of plan p in place from the gradients the
// graph g just computed (values of the logged nodes). It runs between two
// executions, when no execution reads the variables' buffers: a shared
// buffer may be written then (backends.DataInterface.NewSharedBuffer).
//
// Everything is read and checked first (the step counts, the learning
// rate, the coefficients, every buffer); only then are the kernels run and
// the step counts advanced, so a step that fails changes no variable.
func (o *Optimizer) step(g *graph.Graph, p *plan, messages []string, values []*tensors.Tensor, nodes []graph.NodeId) error {
	lr := math.NaN()
	defer func() {
		// Keep no reference to this execution's buffers, nor (but
		// weakly) to the variables.
		p.release()
		clear(p.counts[:])
		clear(p.pcounts)
		clear(p.grads)
		clear(p.work32)
		clear(p.work64)
		clear(p.work16)
	}()
	if err := p.bind(); err != nil {
		return err
	}
	for i, m := range messages {
		if m != o.msg {
			continue
		}
		var err error
		switch id := nodes[i]; {
		case p.hasLR && id == p.lrNode:
			lr, err = scalarFloat(values[i])
		default:
			k, ok := p.slot[id]
			if !ok {
				return fmt.Errorf("%w: graph %q logged node %d, which the optimizer did not mark", ErrVariable, g.Name(), id)
			}
			p.grads[k] = values[i]
		}
		if err != nil {
			return err
		}
	}
	// The step counts: this step is t = the last one + 1 (the rule's own,
	// or the global step for a rule without scope).
	var t int64
	for j, v := range p.counters {
		c, err := readCount(g, p.backend, v, false)
		if err != nil {
			return err
		}
		p.counts[j], t = c, c[0]+1
	}
	h, err := p.r.hyper(t, lr)
	if err != nil {
		return err
	}
	if p.r.perVar {
		p.coefs, p.coefT, p.coef64 = p.coefs[:0], p.coefT[:0], p.coef64[:0]
	}
	c32, c64 := &p.c32, &p.c64 // in the plan: a local would escape
	var have32, have64 bool
	for k := range p.params {
		pa := &p.params[k]
		if p.grads[k] == nil {
			return fmt.Errorf("%w: no gradient of %s came out of graph %q", ErrVariable, pa.v.ScopeAndName(), g.Name())
		}
		if pa.v.ChangedInGraph(g) {
			return fmt.Errorf("%w: %s is changed inside the training graph (a per-step update function?); "+
				"the fused step updates it after the graph", ErrVariable, pa.v.ScopeAndName())
		}
		if p.r.perVar {
			if err := p.ownStep(g, k, t, h); err != nil {
				return err
			}
			continue
		}
		if (pa.dtype == dtypes.Float32 || pa.is16()) && !have32 {
			if err = optim.CoefficientsInto[float32](c32, h, t-1, 1); err != nil {
				return err
			}
			have32 = true
		}
		if pa.dtype == dtypes.Float64 && !have64 {
			if err = optim.CoefficientsInto[float64](c64, h, t-1, 1); err != nil {
				return err
			}
			have64 = true
		}
	}
	for k := range p.params {
		pa := &p.params[k]
		switch {
		case pa.is16():
			err = o.gather16(p.backend, pa, p.grads[k], &p.work16[k])
		case pa.dtype == dtypes.Float32:
			err = gather(p.backend, pa, p.grads[k], &p.work32[k], &o.scratch32)
		default:
			err = gather(p.backend, pa, p.grads[k], &p.work64[k], &o.scratch64)
		}
		if err != nil {
			return err
		}
	}
	if err := p.checkDistinct(); err != nil {
		return err
	}
	for k := range p.params {
		pa := &p.params[k]
		tk, k32, k64 := t, c32, c64
		if p.r.perVar {
			tk, k32, k64 = p.pt[k], &p.coefs[pa.coef], &p.coefs[pa.coef]
		}
		switch {
		case pa.is16():
			r := kernels.Rounding{Stochastic: o.sr, Key: kernels.SRKey(o.seed, uint64(tk), pa.id)}
			err = step16(o.ks, h, k32, pa, &p.work16[k], o.master, r)
		case pa.dtype == dtypes.Float32:
			err = run(o.ks, h, k32, pa, &p.work32[k])
		default:
			err = run(o.ks, h, k64, pa, &p.work64[k])
		}
		if err != nil {
			// The checks above make this unreachable; say which variables
			// have been stepped if it happens.
			return fmt.Errorf("after %d of %d variables: %w", k, len(p.params), err)
		}
	}
	for _, c := range p.counts[:len(p.counters)] {
		c[0]++
	}
	if p.r.perVar {
		for k, c := range p.pcounts {
			c[0] = p.pt[k]
		}
		clear(p.pcounts)
	}
	return nil
}

// ownStep reads and checks the own step count of param k (rule.perVar)
// and finds or computes the coefficients of its step: t = its count + 1
// (ruleT, the step of the rule's count, for a count of -1: a variable of
// a checkpoint written while one count served all).
func (p *plan) ownStep(g *graph.Graph, k int, ruleT int64, h optim.Hyper) error {
	pa := &p.params[k]
	c, err := readCount(g, p.backend, pa.count, true)
	if err != nil {
		return err
	}
	t := c[0] + 1
	if c[0] == -1 {
		t = ruleT
	}
	p.pcounts[k], p.pt[k] = c, t
	is64 := pa.dtype == dtypes.Float64 // (16-bit steps compute in float32)
	for j := range p.coefs {
		if p.coefT[j] == t && p.coef64[j] == is64 {
			pa.coef = j
			return nil
		}
	}
	p.coefs = append(p.coefs, kernels.Coeffs{})
	c0 := &p.coefs[len(p.coefs)-1]
	if is64 {
		err = optim.CoefficientsInto[float64](c0, h, t-1, 1)
	} else {
		err = optim.CoefficientsInto[float32](c0, h, t-1, 1)
	}
	if err != nil {
		p.coefs = p.coefs[:len(p.coefs)-1]
		return err
	}
	p.coefT, p.coef64 = append(p.coefT, t), append(p.coef64, is64)
	pa.coef = len(p.coefs) - 1
	return nil
}

// run is one kernel call: p, g and the state buffers of w, a scratch
// buffer (nil variable) set to zero first.
func run[T float32 | float64](ks *kernels.Set, h optim.Hyper, c *kernels.Coeffs, pa *param, w *work[T]) error {
	for j, sv := range pa.state {
		if sv == nil {
			clear(w.state[j])
		}
	}
	return optim.KernelStep(ks, h, c, w.p, w.g, w.state[:len(pa.state)]...)
}

// step16 is the step of the bfloat16 param pa on the slices of w: with
// float32 state, p is widened into master (as long as p at least) and
// stepped there, and the new value rounded back by r
// (optim.KernelStepMaster); with bfloat16 state, optim.KernelStep16.
// Scratch buffers (nil variables) are set to zero first.
func step16(ks *kernels.Set, h optim.Hyper, c *kernels.Coeffs, pa *param, w *work16, master []float32, r kernels.Rounding) error {
	ns := len(pa.state)
	for j, sv := range pa.state {
		if sv == nil {
			clear(w.s16[j])
			clear(w.s32[j])
		}
	}
	if pa.stateDType == dtypes.Float32 {
		master = master[:len(w.p)]
		for i, x := range w.p {
			master[i] = x.Float32()
		}
		return optim.KernelStepMaster(ks, h, c, master, w.p, w.g, r, w.s32[:ns]...)
	}
	return optim.KernelStep16(ks, h, c, w.p, w.g, r, w.s16[:ns]...)
}

// gather16 is gather for a bfloat16 param: its scratch state buffers and,
// with float32 state, the master it is widened into come from the
// optimizer's scratch (the params are stepped one after the other).
func (o *Optimizer) gather16(backend backends.Backend, pa *param, grad *tensors.Tensor, w *work16) error {
	var err error
	if w.p, err = sharedFlat16(backend, pa.v, pa.n); err != nil {
		return err
	}
	if w.g, err = constFlat16(grad, pa.n); err != nil {
		return fmt.Errorf("gradient of %s: %w", pa.v.ScopeAndName(), err)
	}
	if pa.stateDType == dtypes.Float32 && len(o.master) < pa.n {
		o.master = make([]float32, pa.n)
	}
	for j, sv := range pa.state {
		switch {
		case sv == nil && pa.stateDType == dtypes.Float32:
			if len(o.scratch32) < pa.n {
				o.scratch32 = make([]float32, pa.n)
			}
			w.s32[j] = o.scratch32[:pa.n:pa.n]
		case sv == nil:
			if len(o.scratch16) < pa.n {
				o.scratch16 = make([]kernels.BF16, pa.n)
			}
			w.s16[j] = o.scratch16[:pa.n:pa.n]
		case pa.stateDType == dtypes.Float32:
			w.s32[j], err = sharedFlat[float32](backend, sv, pa.n)
		default:
			w.s16[j], err = sharedFlat16(backend, sv, pa.n)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// gather fills w with the slices of pa's value, its gradient grad and its
// state, all of pa.n elements, making the variables' values shared buffers
// first where they are not (once: a value that an execution returned, the
// initializer's or a loaded one).
func gather[T float32 | float64](backend backends.Backend, pa *param, grad *tensors.Tensor, w *work[T], scratch *[]T) error {
	var err error
	if w.p, err = sharedFlat[T](backend, pa.v, pa.n); err != nil {
		return err
	}
	if w.g, err = constFlat[T](grad, pa.n); err != nil {
		return fmt.Errorf("gradient of %s: %w", pa.v.ScopeAndName(), err)
	}
	for j, sv := range pa.state {
		if sv == nil {
			if len(*scratch) < pa.n {
				*scratch = make([]T, pa.n)
			}
			w.state[j] = (*scratch)[:pa.n:pa.n]
			continue
		}
		if w.state[j], err = sharedFlat[T](backend, sv, pa.n); err != nil {
			return err
		}
	}
	return nil
}

// sharedFlat16 is sharedFlat for a bfloat16 value.
func sharedFlat16(backend backends.Backend, v *context.Variable, n int) ([]kernels.BF16, error) {
	x, err := sharedFlat[bfloat16.BFloat16](backend, v, n)
	return asBF16(x), err
}

// constFlat16 is constFlat for a bfloat16 tensor.
func constFlat16(t *tensors.Tensor, n int) ([]kernels.BF16, error) {
	x, err := constFlat[bfloat16.BFloat16](t, n)
	return asBF16(x), err
}

// asBF16 is x as the kernels' bfloat16 type (the same bits).
func asBF16(x []bfloat16.BFloat16) []kernels.BF16 {
	return unsafe.Slice((*kernels.BF16)(unsafe.Pointer(unsafe.SliceData(x))), len(x))
}

// readCount returns the memory of the step count v, checked: not changed
// inside g, an int64 scalar (as graph building requires: a count edited to
// another shape is refused here too, before anything is written), and
// from 0 (legacy: from -1, a variable's count that takes the optimizer's)
// to below MaxInt64.
func readCount(g *graph.Graph, backend backends.Backend, v *context.Variable, legacy bool) ([]int64, error) {
	if v.ChangedInGraph(g) {
		return nil, fmt.Errorf("%w: step count %s is changed inside the training graph; "+
			"the fused step advances it after the graph", ErrVariable, v.ScopeAndName())
	}
	if sh := v.Shape(); sh.DType != dtypes.Int64 || !sh.IsScalar() {
		return nil, fmt.Errorf("%w: step count %s has shape %s, want an int64 scalar", ErrVariable, v.ScopeAndName(), sh)
	}
	c, err := sharedFlat[int64](backend, v, 1)
	if err != nil {
		return nil, err
	}
	if (legacy && c[0] == -1) || (c[0] >= 0 && c[0] != math.MaxInt64) {
		return c, nil
	}
	msg := "want 0 ≤ count < MaxInt64"
	if legacy {
		msg += " (or -1: take the optimizer's count)"
	}
	return nil, fmt.Errorf("%w: step count %s = %d, %s", optim.ErrInvalid, v.ScopeAndName(), c[0], msg)
}

// sharedFlat returns the memory of v's value, n elements of T, replacing
// the value by a shared-buffer copy if it is not one.
func sharedFlat[T float32 | float64 | int64 | bfloat16.BFloat16](backend backends.Backend, v *context.Variable, n int) ([]T, error) {
	t, err := v.Value()
	if err != nil || t == nil {
		return nil, fmt.Errorf("%w: %s has no value (%v)", ErrVariable, v.ScopeAndName(), err)
	}
	if err := claim(t, v); err != nil {
		return nil, err
	}
	if !t.IsShared() {
		// Once per value: an execution's output (the initializer's) is the
		// backend's buffer, not shared with the tensor. Tensor.ToLocal and
		// MaterializeOnDevice with share = true make it a shared one.
		// (Tensor.OnDeviceClone would copy once, but GoMLX v0.26.0 does not
		// mark its copy shared: ondevice.go:317-326.)
		err := t.ToLocal()
		if err == nil {
			err = t.MaterializeOnDevice(backend, true, 0)
		}
		if err == nil && !t.IsShared() {
			err = fmt.Errorf("%w: the backend made no shared buffer", ErrUnsupported)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %s: a shared buffer: %w", ErrVariable, v.ScopeAndName(), err)
		}
	}
	var out []T
	if err := t.MutableFlatData(func(flat any) { out, _ = flat.([]T) }); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrVariable, v.ScopeAndName(), err)
	}
	if len(out) != n {
		return nil, fmt.Errorf("%w: %s holds %d elements of %s, want %d", ErrVariable, v.ScopeAndName(), t.Size(), t.DType(), n)
	}
	return out, nil
}

// owners records, for every tensor whose memory a step has written, the
// variable whose value it was (weakly, by the tensor's address; an entry
// goes with its tensor): one tensor given to the variables of two models
// (two contexts initialised from one tensor) would otherwise be stepped
// by both, as one buffer. plan.checkDistinct finds such variables within
// one graph; owners across graphs, optimizers and contexts.
var owners = struct {
	sync.Mutex
	m map[uintptr]owner
}{m: map[uintptr]owner{}}

// owner is an entry of owners: the tensor (so that an entry left by a
// collected tensor whose address a new one has is told from the new
// one's) and the variable it was claimed for.
type owner struct {
	t weak.Pointer[tensors.Tensor]
	v weak.Pointer[context.Variable]
}

// claim records v as the variable whose value t is, or refuses t (an
// error wrapping ErrVariable) where it is the value of another variable
// still alive: GoMLX's own optimizers refuse it too (the first step
// donates the tensor). It allocates only at a tensor's first claim (and
// at a variable's first claim of a tensor claimed before).
func claim(t *tensors.Tensor, v *context.Variable) error {
	a := uintptr(unsafe.Pointer(t))
	owners.Lock()
	defer owners.Unlock()
	e, ok := owners.m[a]
	if ok && e.t.Value() == t {
		switch o := e.v.Value(); {
		case o == v:
			return nil
		case o != nil && holds(o, t):
			// Another variable still holds t, or one the program has
			// dropped (a finished model, whose tensor a new one
			// continues from) and no collection has cleared: a
			// collection tells them apart. (Only here: a refusal, or
			// the first step of a model started from another's
			// tensor, pays for it.) o is not used after holds: it
			// keeps nothing alive.
			runtime.GC()
			if o := e.v.Value(); o != nil && holds(o, t) {
				return fmt.Errorf("%w: %s and %s hold one tensor as their value (two models initialised from one tensor?): "+
					"each is stepped in place; give each its own tensor", ErrVariable, o.ScopeAndName(), v.ScopeAndName())
			}
		}
		// The variable it was claimed for is gone, or holds another
		// tensor now: v takes it.
		owners.m[a] = owner{e.t, weak.Make(v)}
		return nil
	}
	// A new tensor (or one at the address of a collected one, whose
	// cleanup has not run yet: it deletes only an entry of a dead tensor).
	owners.m[a] = owner{weak.Make(t), weak.Make(v)}
	runtime.AddCleanup(t, func(a uintptr) {
		owners.Lock()
		if e, ok := owners.m[a]; ok && e.t.Value() == nil {
			delete(owners.m, a)
		}
		owners.Unlock()
	}, a)
	return nil
}

// holds reports whether t is v's value.
func holds(v *context.Variable, t *tensors.Tensor) bool {
	vt, err := v.Value()
	return err == nil && vt == t
}

// constFlat returns the memory of t (an execution's output: the backend's
// buffer itself on a backend with shared buffers).
func constFlat[T float32 | float64 | bfloat16.BFloat16](t *tensors.Tensor, n int) ([]T, error) {
	var out []T
	if err := t.ConstFlatData(func(flat any) { out, _ = flat.([]T) }); err != nil {
		return nil, err
	}
	if len(out) != n {
		return nil, fmt.Errorf("%w: %d elements of %s, want %d", optim.ErrLength, t.Size(), t.DType(), n)
	}
	return out, nil
}

func scalarFloat(t *tensors.Tensor) (float64, error) {
	v, ok := 0.0, false
	err := t.ConstFlatData(func(flat any) {
		switch f := flat.(type) {
		case []float32:
			if len(f) == 1 {
				v, ok = float64(f[0]), true
			}
		case []float64:
			if len(f) == 1 {
				v, ok = f[0], true
			}
		case []bfloat16.BFloat16:
			if len(f) == 1 {
				v, ok = float64(f[0].Float32()), true
			}
		}
	})
	if err == nil && !ok {
		err = fmt.Errorf("%w: learning rate of shape %s", ErrUnsupported, t.Shape())
	}
	return v, err
}

// checkDistinct checks that no two variables the step writes (a trainable
// variable or a state variable) share their memory: two variables given the
// same tensor (ctx.VariableWithValue twice with one tensor, SetValue with
// another variable's value) would be stepped twice, each with the other's
// update. GoMLX refuses such variables too (its executor donates the
// tensor's buffer for the first and fails on the second). The addresses are
// kept from the last step, so the check costs one comparison per buffer
// while they stay.
func (p *plan) checkDistinct() error {
	i, changed := 0, false
	p.eachBuffer(func(_ *context.Variable, a uintptr) {
		if i == len(p.addrs) {
			p.addrs = append(p.addrs, a)
			changed = true
		} else if p.addrs[i] != a {
			p.addrs[i] = a
			changed = true
		}
		i++
	})
	if !changed && i == len(p.addrs) {
		return nil
	}
	p.addrs = p.addrs[:i]
	sorted := slices.Clone(p.addrs)
	slices.Sort(sorted)
	for j := 1; j < len(sorted); j++ {
		if sorted[j] == sorted[j-1] {
			p.addrs = p.addrs[:0] // check again at the next step
			return fmt.Errorf("%w: variables %v share their memory (one tensor given to each): "+
				"give each variable its own tensor", ErrVariable, p.sharing(sorted[j]))
		}
	}
	return nil
}

// sharing returns the names of the variables whose memory starts at a.
func (p *plan) sharing(a uintptr) []string {
	var names []string
	p.eachBuffer(func(v *context.Variable, at uintptr) {
		if at == a {
			names = append(names, v.ScopeAndName())
		}
	})
	return names
}

// eachBuffer calls f with each variable of the plan that has memory (its
// parameters and their state variables, in order) and the address where
// its memory starts.
func (p *plan) eachBuffer(f func(v *context.Variable, a uintptr)) {
	for k := range p.params {
		pa := &p.params[k]
		switch {
		case pa.is16():
			w := &p.work16[k]
			if len(w.p) > 0 {
				f(pa.v, uintptr(unsafe.Pointer(unsafe.SliceData(w.p))))
			}
			for j, sv := range pa.state {
				switch {
				case sv == nil:
				case len(w.s16[j]) > 0:
					f(sv, uintptr(unsafe.Pointer(unsafe.SliceData(w.s16[j]))))
				case len(w.s32[j]) > 0:
					f(sv, uintptr(unsafe.Pointer(unsafe.SliceData(w.s32[j]))))
				}
			}
		case pa.dtype == dtypes.Float32:
			buffersOf(pa, &p.work32[k], f)
		default:
			buffersOf(pa, &p.work64[k], f)
		}
	}
}

// buffersOf is eachBuffer for one parameter pa whose memory w holds.
func buffersOf[T float32 | float64](pa *param, w *work[T], f func(v *context.Variable, a uintptr)) {
	if len(w.p) > 0 {
		f(pa.v, uintptr(unsafe.Pointer(unsafe.SliceData(w.p))))
	}
	for j, sv := range pa.state {
		if sv != nil && len(w.state[j]) > 0 {
			f(sv, uintptr(unsafe.Pointer(unsafe.SliceData(w.state[j]))))
		}
	}
}
