package fusespago

import (
	"context"
	"fmt"
	"runtime"
	"sync"

	"github.com/fuseopt/fuseopt/optim"
	"github.com/nlpodyssey/spago/nn"
	"github.com/nlpodyssey/spago/optimizers"
)

// Optimizer applies a strategy to every parameter of a model that has a
// gradient, as spago's optimizers.Optimizer does, with up to GOMAXPROCS
// parameters updated at once, but Optimize returns only once every update
// has finished.
//
// spago v1.1.0's Optimizer.Optimize starts one goroutine per parameter and
// returns without waiting for them (it waits only on its error path), so
// the next forward pass can read parameters that are still being written,
// and an update that fails after it returned panics on its closed error
// channel. Optimizer takes the same arguments and works with any strategy,
// spago's included.
type Optimizer struct {
	params   nn.ParamChannelFunc
	strategy optimizers.OptimizationStrategy
}

// NewOptimizer returns an Optimizer of the parameters params (nn.Parameters(model)
// or nn.StreamParams(list)) with the strategy.
func NewOptimizer(params nn.ParamChannelFunc, strategy optimizers.OptimizationStrategy) *Optimizer {
	return &Optimizer{params: params, strategy: strategy}
}

// Optimize updates every parameter that has a gradient and returns after
// all updates have finished. After the first error no new update starts;
// the error is returned. A parameter that the channel gives more than once
// (a weight shared by two layers: nn.Parameters walks the model and does
// not remove repeats) is updated once, where spago's Optimizer would
// update it once per appearance, from several goroutines at once. A nil
// parameter, or one without a value, is an error wrapping ErrParam.
func (o *Optimizer) Optimize() error {
	if o == nil || o.params == nil || o.strategy == nil {
		return fmt.Errorf("%w: an Optimizer made by NewOptimizer with parameters and a strategy", optim.ErrInvalid)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := o.params(ctx)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		seen     = make(map[*nn.Param]struct{})
	)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for p := range ch {
				mu.Lock()
				failed := firstErr != nil
				_, repeat := seen[p]
				seen[p] = struct{}{}
				mu.Unlock()
				var err error
				switch {
				case failed || repeat:
					continue
				case p == nil || noValue(p):
					err = fmt.Errorf("%w: a nil parameter, or one without a value", ErrParam)
				case !p.HasGrad():
					continue
				default:
					err = o.strategy.OptimizeParams(p)
				}
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
						cancel()
					}
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	return firstErr
}
