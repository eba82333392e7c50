package fusegomlx

import (
	"fmt"
	"math"
	"slices"
	"unsafe"

	"github.com/fuseopt/fuseopt/kernels"
	"github.com/fuseopt/fuseopt/optim"
	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
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
		// Keep no reference to this execution's buffers.
		clear(p.counts[:])
		clear(p.grads)
		clear(p.work32)
		clear(p.work64)
	}()
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
		if v.ChangedInGraph(g) {
			return fmt.Errorf("%w: step count %s is changed inside the training graph; "+
				"the fused step advances it after the graph", ErrVariable, v.ScopeAndName())
		}
		c, err := sharedFlat[int64](p.backend, v, 1)
		if err != nil {
			return err
		}
		if c[0] < 0 || c[0] == math.MaxInt64 {
			return fmt.Errorf("%w: step count %s = %d, want 0 ≤ count < MaxInt64", optim.ErrInvalid, v.ScopeAndName(), c[0])
		}
		p.counts[j], t = c, c[0]+1
	}
	h, err := p.r.hyper(t, lr)
	if err != nil {
		return err
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
		if pa.dtype == dtypes.Float32 && !have32 {
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
		switch pa.dtype {
		case dtypes.Float32:
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
		switch pa.dtype {
		case dtypes.Float32:
			err = run(o.ks, h, c32, pa, &p.work32[k])
		default:
			err = run(o.ks, h, c64, pa, &p.work64[k])
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

// sharedFlat returns the memory of v's value, n elements of T, replacing
// the value by a shared-buffer copy if it is not one.
func sharedFlat[T float32 | float64 | int64](backend backends.Backend, v *context.Variable, n int) ([]T, error) {
	t, err := v.Value()
	if err != nil || t == nil {
		return nil, fmt.Errorf("%w: %s has no value (%v)", ErrVariable, v.ScopeAndName(), err)
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

// constFlat returns the memory of t (an execution's output: the backend's
// buffer itself on a backend with shared buffers).
func constFlat[T float32 | float64](t *tensors.Tensor, n int) ([]T, error) {
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
		if pa.dtype == dtypes.Float32 {
			buffersOf(pa, &p.work32[k], f)
		} else {
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
