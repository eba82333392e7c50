package optim

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/fuseopt/fuseopt/kernels"
)

func TestDefaults(t *testing.T) {
	if got := DefaultAdam(); got != (AdamConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}) {
		t.Errorf("DefaultAdam() = %+v", got)
	}
	if got := DefaultAdamW(); got != (AdamWConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 1e-2}) {
		t.Errorf("DefaultAdamW() = %+v", got)
	}
	if got := DefaultSGD(0.1); got != (SGDConfig{LR: 0.1}) {
		t.Errorf("DefaultSGD(0.1) = %+v", got)
	}
	if got := DefaultLion(); got != (LionConfig{LR: 1e-4, Beta1: 0.9, Beta2: 0.99}) {
		t.Errorf("DefaultLion() = %+v", got)
	}
	if got := DefaultRMSprop(); got != (RMSpropConfig{LR: 1e-2, Alpha: 0.99, Eps: 1e-8}) {
		t.Errorf("DefaultRMSprop() = %+v", got)
	}
	if got := DefaultAdagrad(); got != (AdagradConfig{LR: 1e-2, Eps: 1e-10}) {
		t.Errorf("DefaultAdagrad() = %+v", got)
	}
	if got := DefaultAdamax(); got != (AdamaxConfig{LR: 2e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}) {
		t.Errorf("DefaultAdamax() = %+v", got)
	}
	if got := DefaultAdadelta(); got != (AdadeltaConfig{LR: 1, Rho: 0.9, Eps: 1e-6}) {
		t.Errorf("DefaultAdadelta() = %+v", got)
	}
	if got := DefaultNAdam(); got != (NAdamConfig{LR: 2e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, MomentumDecay: 4e-3}) {
		t.Errorf("DefaultNAdam() = %+v", got)
	}
	if got := DefaultLAMB(); got != (LAMBConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-6}) {
		t.Errorf("DefaultLAMB() = %+v", got)
	}
	if got := DefaultRAdam(); got != (RAdamConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}) {
		t.Errorf("DefaultRAdam() = %+v", got)
	}
	for h, want := range map[Hyper][]string{
		DefaultNAdam(): {"lr", "beta1", "beta2", "eps", "weight_decay", "momentum_decay", "decoupled_weight_decay", "maximize"},
		DefaultRAdam(): {"lr", "beta1", "beta2", "eps", "weight_decay", "maximize", "decoupled_weight_decay"},
	} {
		if names, _ := values(h); !slices.Equal(names, want) {
			t.Errorf("%T: names %v, want %v", h, names, want)
		}
		if got := StateNames(h); !slices.Equal(got, []string{BufExpAvg, BufExpAvgSq}) {
			t.Errorf("%T: StateNames = %v", h, got)
		}
	}
	if got := ScalarNames(DefaultNAdam()); !slices.Equal(got, []string{"mu_product"}) {
		t.Errorf("ScalarNames(NAdam) = %v", got)
	}
	if got := ScalarNames(DefaultRAdam()); got != nil {
		t.Errorf("ScalarNames(RAdam) = %v", got)
	}
	for _, h := range []Hyper{DefaultAdam(), DefaultAdamW(), DefaultSGD(0.1), DefaultEMA(0.1), SGDConfig{}, DefaultLion(),
		DefaultRMSprop(), RMSpropConfig{LR: 0.1, Alpha: 0.9, Eps: 1e-6, WeightDecay: 0.1, Momentum: 0.5, Centered: true, Maximize: true},
		DefaultAdagrad(), AdagradConfig{LR: 0.1, LRDecay: 0.01, WeightDecay: 0.1, InitialAccumulatorValue: 0.5, Maximize: true},
		DefaultAdamax(), AdamaxConfig{LR: 0.1, Beta1: 0, Beta2: 0.5, WeightDecay: 0.1, Maximize: true},
		DefaultAdadelta(), AdadeltaConfig{LR: 0.5, Rho: 1, WeightDecay: 0.1, Maximize: true}, AdadeltaConfig{Rho: 0},
		DefaultNAdam(), NAdamConfig{LR: 0.1, Beta1: 0.5, Beta2: 0.9, Eps: 1e-6, WeightDecay: 0.1, MomentumDecay: 0.1, DecoupledWeightDecay: true, Maximize: true},
		NAdamConfig{LR: 0.1}, DefaultRAdam(),
		RAdamConfig{LR: 0.1, Beta1: 0.5, Beta2: 0.9, Eps: 1e-6, WeightDecay: 0.1, DecoupledWeightDecay: true, Maximize: true},
		DefaultLAMB(), LAMBConfig{LR: 0.01, Beta1: 0.8, Beta2: 0.9, Eps: 1e-8, WeightDecay: 0.1, Maximize: true, Spago: true}} {
		if err := h.Validate(); err != nil {
			t.Errorf("%T: %v", h, err)
		}
		names, vals := values(h)
		if back, err := fromValues(h.Kind(), names, vals); err != nil || back != h {
			t.Errorf("%T does not round-trip through its named values: %v, %v", h, back, err)
		}
	}
}

func TestValidate(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	cases := []struct {
		h     Hyper
		field string
	}{
		{SGDConfig{LR: -1}, "LR"},
		{SGDConfig{LR: nan}, "LR"},
		{SGDConfig{LR: inf}, "LR"},
		{SGDConfig{LR: 1, Momentum: -0.1}, "Momentum"},
		{SGDConfig{LR: 1, WeightDecay: -1}, "WeightDecay"},
		{SGDConfig{LR: 1, Dampening: nan}, "Dampening"},
		{SGDConfig{LR: 1, Nesterov: true}, "Momentum"},
		{SGDConfig{LR: 1, Momentum: 0.9, Dampening: 0.1, Nesterov: true}, "Dampening"},
		{EMAConfig{LR: 1, Beta: 1}, "Beta"},
		{EMAConfig{LR: 1, Beta: -0.5}, "Beta"},
		{EMAConfig{LR: -1, Beta: 0.5}, "LR"},
		{EMAConfig{LR: 1, Beta: 0.5, WeightDecay: -1}, "WeightDecay"},
		{AdamConfig{LR: -1e-3, Beta1: 0.9, Beta2: 0.999}, "LR"},
		{AdamConfig{LR: 1e-3, Beta1: 1, Beta2: 0.999}, "Beta1"},
		{AdamConfig{LR: 1e-3, Beta1: 0.9, Beta2: 1.5}, "Beta2"},
		{AdamConfig{LR: 1e-3, Beta1: 0.9, Beta2: nan}, "Beta2"},
		{AdamConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: -1}, "Eps"},
		{AdamConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 0x1p120, Fast: true}, "Eps"},
		{AdamWConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e38, Fast: true}, "Eps"},
		{AdamWConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, WeightDecay: -1e-2}, "WeightDecay"},
		{AdamWConfig{LR: 1e-3, Beta1: -0.1, Beta2: 0.999}, "Beta1"},
		{LionConfig{LR: -1, Beta1: 0.9, Beta2: 0.99}, "LR"},
		{LionConfig{LR: 1e-4, Beta1: 1, Beta2: 0.99}, "Beta1"},
		{LionConfig{LR: 1e-4, Beta1: 0.9, Beta2: math.NaN()}, "Beta2"},
		{LionConfig{LR: 1e-4, Beta1: 0.9, Beta2: 0.99, WeightDecay: -1}, "WeightDecay"},
		{AdagradConfig{LR: -1, Eps: 1e-10}, "LR"},
		{AdagradConfig{LR: 1e-2, LRDecay: -0.1, Eps: 1e-10}, "LRDecay"},
		{AdagradConfig{LR: 1e-2, WeightDecay: nan, Eps: 1e-10}, "WeightDecay"},
		{AdagradConfig{LR: 1e-2, InitialAccumulatorValue: -1, Eps: 1e-10}, "InitialAccumulatorValue"},
		{LAMBConfig{LR: -1e-3, Beta1: 0.9, Beta2: 0.999}, "LR"},
		{LAMBConfig{LR: inf, Beta1: 0.9, Beta2: 0.999}, "LR"},
		{LAMBConfig{LR: 1e-3, Beta1: 1, Beta2: 0.999}, "Beta1"},
		{LAMBConfig{LR: 1e-3, Beta1: 0.9, Beta2: nan}, "Beta2"},
		{LAMBConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: -1e-6}, "Eps"},
		{LAMBConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, WeightDecay: -0.01}, "WeightDecay"},
		{NAdamConfig{LR: -1, Beta1: 0.9, Beta2: 0.999}, "LR"},
		{NAdamConfig{LR: 2e-3, Beta1: 0.9, Beta2: 0.999, Eps: -1e-8}, "Eps"},
		{NAdamConfig{LR: 2e-3, Beta1: 1, Beta2: 0.999}, "Beta1"},
		{NAdamConfig{LR: 2e-3, Beta1: 0.9, Beta2: -0.1}, "Beta2"},
		{NAdamConfig{LR: 2e-3, Beta1: 0.9, Beta2: 0.999, WeightDecay: -1}, "WeightDecay"},
		{NAdamConfig{LR: 2e-3, Beta1: 0.9, Beta2: 0.999, MomentumDecay: -4e-3}, "MomentumDecay"},
		{NAdamConfig{LR: 2e-3, Beta1: 0.9, Beta2: 0.999, MomentumDecay: inf}, "MomentumDecay"},
		{NAdamConfig{LR: 2e-3, Beta1: 0.9, Beta2: 0.999, MomentumDecay: nan}, "MomentumDecay"},
		{RAdamConfig{LR: nan, Beta1: 0.9, Beta2: 0.999}, "LR"},
		{RAdamConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: inf}, "Eps"},
		{RAdamConfig{LR: 1e-3, Beta1: -0.5, Beta2: 0.999}, "Beta1"},
		{RAdamConfig{LR: 1e-3, Beta1: 0.9, Beta2: 1}, "Beta2"},
		{RAdamConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, WeightDecay: -0.1}, "WeightDecay"},
		{AdagradConfig{LR: 1e-2, InitialAccumulatorValue: inf, Eps: 1e-10}, "InitialAccumulatorValue"},
		{AdagradConfig{LR: 1e-2, Eps: -1e-10}, "Eps"},
		{RMSpropConfig{LR: -1, Alpha: 0.99}, "LR"},
		{RMSpropConfig{LR: 1e-2, Alpha: -0.5}, "Alpha"},
		{RMSpropConfig{LR: 1e-2, Alpha: 1.5}, "Alpha"},
		{RMSpropConfig{LR: 1e-2, Alpha: inf}, "Alpha"},
		{RMSpropConfig{LR: 1e-2, Alpha: 0.99, Eps: -1}, "Eps"},
		{RMSpropConfig{LR: 1e-2, Alpha: 0.99, Momentum: -0.1}, "Momentum"},
		{RMSpropConfig{LR: 1e-2, Alpha: 0.99, WeightDecay: nan}, "WeightDecay"},
		{AdamaxConfig{LR: -1, Beta1: 0.9, Beta2: 0.999}, "LR"},
		{AdamaxConfig{LR: inf, Beta1: 0.9, Beta2: 0.999}, "LR"},
		{AdamaxConfig{LR: 2e-3, Beta1: 1, Beta2: 0.999}, "Beta1"},
		{AdamaxConfig{LR: 2e-3, Beta1: -0.1, Beta2: 0.999}, "Beta1"},
		{AdamaxConfig{LR: 2e-3, Beta1: 0.9, Beta2: 1}, "Beta2"},
		{AdamaxConfig{LR: 2e-3, Beta1: 0.9, Beta2: nan}, "Beta2"},
		{AdamaxConfig{LR: 2e-3, Beta1: 0.9, Beta2: 0.999, Eps: -1e-8}, "Eps"},
		{AdamaxConfig{LR: 2e-3, Beta1: 0.9, Beta2: 0.999, WeightDecay: -1}, "WeightDecay"},
		{AdadeltaConfig{LR: -1, Rho: 0.9}, "LR"},
		{AdadeltaConfig{LR: 1, Rho: 1.01}, "Rho"},
		{AdadeltaConfig{LR: 1, Rho: -0.1}, "Rho"},
		{AdadeltaConfig{LR: 1, Rho: nan}, "Rho"},
		{AdadeltaConfig{LR: 1, Rho: 0.9, Eps: -1e-6}, "Eps"},
		{AdadeltaConfig{LR: 1, Rho: 0.9, Eps: inf}, "Eps"},
		{AdadeltaConfig{LR: 1, Rho: 0.9, WeightDecay: nan}, "WeightDecay"},
	}
	for _, c := range cases {
		err := c.h.Validate()
		if !errors.Is(err, ErrHyper) || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.field+" =") {
			t.Errorf("%T%+v: err = %v, want ErrHyper naming %s", c.h, c.h, err, c.field)
		}
		if _, err := New[float32](c.h, Options{}); !errors.Is(err, ErrHyper) {
			t.Errorf("New(%+v): err = %v", c.h, err)
		}
	}
	if _, err := New[float32](nil, Options{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("New(nil): %v", err)
	}
}

func TestOptions(t *testing.T) {
	for _, op := range []Options{{Workers: -1}, {ChunkSize: 100}, {ChunkSize: -16}, {NonFinite: 7}, {Kernels: new(kernels.Set)}} {
		if _, err := New[float64](DefaultAdam(), op); !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v: err = %v", op, err)
		}
	}
	o := mustNew[float64](t, DefaultAdam(), Options{})
	op := o.Options()
	if op.Workers < 1 || op.ChunkSize != DefaultChunkSize || op.ShardThreshold != DefaultShardThreshold || op.Kernels == nil {
		t.Errorf("resolved options %+v", op)
	}
}

func TestRegistration(t *testing.T) {
	o := mustNew[float32](t, DefaultAdam(), Options{})
	a, ga := make([]float32, 10), make([]float32, 10)
	if err := o.Add("a", a, ga, 2, 5); err != nil {
		t.Fatal(err)
	}
	big := make([]float32, 100)
	cases := []struct {
		name       string
		group      int
		data, grad []float32
		shape      []int
		want       error
		mention    string
	}{
		{"b", 0, make([]float32, 4), make([]float32, 3), nil, ErrLength, `"b"`},
		{"a", 0, make([]float32, 4), make([]float32, 4), nil, ErrInvalid, `"a"`},
		{"", 0, make([]float32, 4), make([]float32, 4), nil, ErrInvalid, "name"},
		{"c", 0, make([]float32, 4), make([]float32, 4), []int{3}, ErrLength, `"c"`},
		{"c", 0, make([]float32, 4), make([]float32, 4), []int{2, -2}, ErrInvalid, `"c"`},
		{"c", 0, make([]float32, 4), make([]float32, 4), []int{int(min(1<<40, uint64(math.MaxInt))), int(min(1<<40, uint64(math.MaxInt))), 4}, ErrLength, `"c"`},
		{"d", 1, make([]float32, 4), make([]float32, 4), nil, ErrInvalid, "group 1"},
		{"e", 0, a[2:4], make([]float32, 2), nil, ErrInvalid, `"a"`},
		{"f", 0, make([]float32, 2), ga[8:], nil, ErrInvalid, `"a"`},
		{"g", 0, big[:50], big[40:90], nil, ErrInvalid, `"g"`},
	}
	for _, c := range cases {
		err := o.AddTo(c.group, c.name, c.data, c.grad, c.shape...)
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.mention) {
			t.Errorf("AddTo(%d, %q, len %d, len %d, %v): err = %v, want %v mentioning %s",
				c.group, c.name, len(c.data), len(c.grad), c.shape, err, c.want, c.mention)
		}
	}
	if o.NumParams() != 1 {
		t.Fatalf("%d parameters after failed registrations, want 1", o.NumParams())
	}
	if err := o.Add("z", nil, nil, 0, 5); err != nil {
		t.Errorf("empty parameter: %v", err)
	}
	if info, _ := o.Param("a"); info.Len != 10 || len(info.Shape) != 2 || info.Shape[1] != 5 {
		t.Errorf("Param(a) = %+v", info)
	}
	if _, err := o.AddGroup(DefaultSGD(0.1)); !errors.Is(err, ErrInvalid) {
		t.Errorf("AddGroup of another kind: %v", err)
	}
	if _, err := o.AddGroup(AdamConfig{LR: 1, Beta1: 2}); !errors.Is(err, ErrHyper) {
		t.Errorf("AddGroup invalid: %v", err)
	}
	if o.NumGroups() != 1 {
		t.Errorf("%d groups after failed AddGroup", o.NumGroups())
	}
	if err := o.SetLR(0, -1); !errors.Is(err, ErrHyper) || !strings.Contains(err.Error(), "LR") {
		t.Errorf("SetLR(-1): %v", err)
	}
	if err := o.SetLR(3, 1); !errors.Is(err, ErrInvalid) {
		t.Errorf("SetLR(group 3): %v", err)
	}
	if h, _ := o.Group(0); h.(AdamConfig).LR != 1e-3 {
		t.Errorf("LR changed by a failed SetLR: %v", h)
	}
	for _, s := range []float64{0, -1, math.NaN(), math.Inf(1), 1e300} {
		if err := o.SetLossScale(s); !errors.Is(err, ErrHyper) {
			t.Errorf("SetLossScale(%v): %v", s, err)
		}
	}
	if o.LossScale() != 1 {
		t.Errorf("loss scale changed by failed calls: %v", o.LossScale())
	}
	if _, err := o.State("a", BufMomentumBuffer); !errors.Is(err, ErrInvalid) {
		t.Errorf("State of a missing buffer: %v", err)
	}
	if _, err := o.State("nope", BufExpAvg); !errors.Is(err, ErrInvalid) {
		t.Errorf("State of a missing parameter: %v", err)
	}
}

func TestClosed(t *testing.T) {
	o := mustNew[float32](t, DefaultAdam(), Options{Workers: 2, ShardThreshold: -1, WakeThreshold: -1, ChunkSize: 16})
	p, g := make([]float32, 100), make([]float32, 100)
	if err := o.Add("p", p, g); err != nil {
		t.Fatal(err)
	}
	mustStep(t, o)
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	if err := o.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	if _, err := o.Step(); !errors.Is(err, ErrClosed) {
		t.Errorf("Step after Close: %v", err)
	}
	if err := o.Add("q", make([]float32, 1), make([]float32, 1)); !errors.Is(err, ErrClosed) {
		t.Errorf("Add after Close: %v", err)
	}
	if _, err := o.ClipGradNorm(1); !errors.Is(err, ErrClosed) {
		t.Errorf("ClipGradNorm after Close: %v", err)
	}
	if err := o.Load(strings.NewReader("")); !errors.Is(err, ErrClosed) {
		t.Errorf("Load after Close: %v", err)
	}
	// The optimizer's state comes before the arguments: a bad name, group
	// or value is not what a closed optimizer reports.
	if err := o.SetGroupValue(0, "bogus", 1); !errors.Is(err, ErrClosed) {
		t.Errorf("SetGroupValue(0, bogus) after Close: %v", err)
	}
	if err := o.SetGroupValue(5, "lr", 0.1); !errors.Is(err, ErrClosed) {
		t.Errorf("SetGroupValue(5, lr) after Close: %v", err)
	}
	g[0] = 1
	o.ZeroGrad()
	if g[0] != 0 {
		t.Error("ZeroGrad after Close did nothing")
	}
	var sb strings.Builder
	if err := o.Save(&sb); err != nil {
		t.Errorf("Save after Close: %v", err)
	}
}

// TestParamInto: ParamInto describes parameter i as Params does, reuses
// the Shape it is given (no allocation once it has room), and refuses an
// index out of range without touching dst.
func TestParamInto(t *testing.T) {
	o, err := New[float32](DefaultAdam(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	shapes := [][]int{{3, 4}, {12}, {2, 3, 2}, nil}
	for k, sh := range shapes {
		n := 12
		if sh == nil {
			n = 5
		}
		if err := o.Add(fmt.Sprintf("p%d", k), make([]float32, n), make([]float32, n), sh...); err != nil {
			t.Fatal(err)
		}
	}
	if err := o.SetRequiresGrad("p1", false); err != nil {
		t.Fatal(err)
	}
	if err := o.SetNoGrad("p2"); err != nil {
		t.Fatal(err)
	}
	want := o.Params()
	var dst ParamInfo
	for i := range want {
		if err := o.ParamInto(i, &dst); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(dst, want[i]) {
			t.Fatalf("ParamInto(%d) = %+v, Params()[%d] = %+v", i, dst, i, want[i])
		}
	}
	allocs := testing.AllocsPerRun(100, func() {
		for i := range want {
			if err := o.ParamInto(i, &dst); err != nil {
				t.Fatal(err)
			}
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per loop over the parameters, want 0", allocs)
	}
	// The shape is copied into dst's memory, not shared with the optimizer.
	if err := o.ParamInto(2, &dst); err != nil {
		t.Fatal(err)
	}
	dst.Shape[0] = 99
	if p, _ := o.Param("p2"); p.Shape[0] != 2 {
		t.Fatalf("changing dst.Shape changed the parameter's shape: %v", p.Shape)
	}
	before := dst
	for _, i := range []int{-1, len(want), int(min(1<<40, uint64(math.MaxInt)))} {
		if err := o.ParamInto(i, &dst); !errors.Is(err, ErrInvalid) {
			t.Fatalf("ParamInto(%d): %v, want ErrInvalid", i, err)
		}
		if !reflect.DeepEqual(dst, before) {
			t.Fatalf("ParamInto(%d) changed dst: %+v", i, dst)
		}
	}
}

// TestRAdamRectifiedLR: a learning rate whose RAdam step size underflows
// float32 only where the rectification starts (r_t near 0 at t = 6 with
// β2 = 0.999) is refused where it is set, not by every step from the
// sixth on.
func TestRAdamRectifiedLR(t *testing.T) {
	h := DefaultRAdam()
	h.LR = 1e-43
	if _, err := New[float32](h, Options{}); !errors.Is(err, ErrHyper) {
		t.Fatalf("New with lr 1e-43: %v, want ErrHyper", err)
	}
	o := mustNew[float32](t, DefaultRAdam(), Options{Workers: 1})
	p := []float32{1, 2}
	if err := o.Add("p", p, []float32{0.5, 0.5}); err != nil {
		t.Fatal(err)
	}
	if err := o.SetLR(0, 1e-43); !errors.Is(err, ErrHyper) {
		t.Fatalf("SetLR(1e-43): %v, want ErrHyper", err)
	}
	if err := o.SetLR(0, 1e-30); err != nil {
		t.Fatal(err)
	}
	for range 12 {
		mustStep(t, o)
	}
	if rc := (RAdamConfig{Beta1: 0.9, Beta2: 0.999}); rc.firstRectified() != 6 {
		t.Errorf("first rectified step %d, want 6", rc.firstRectified())
	}
	if rc := (RAdamConfig{Beta1: 0.9, Beta2: 0.5}); rc.firstRectified() != 0 {
		t.Errorf("β2 0.5: first rectified step %d, want none", rc.firstRectified())
	}
}

// TestRAdamBranchAtFive: for β2 whose ρ_t is within ulps of 5 (at steps 6,
// 7 and 8), RAdam takes PyTorch's branch, ρ_t computed in float64 in its
// order from a correctly rounded β2^t (C's pow), step after step: a
// float64 textbook RAdam agrees to 1e-12, where the other branch's step
// would differ by about the step itself. The first rectified step agrees
// too.
func TestRAdamBranchAtFive(t *testing.T) {
	pow := func(b float64, st int) float64 { // b^st rounded once, from 300 bits
		x, r := new(big.Float).SetPrec(300).SetFloat64(b), new(big.Float).SetPrec(300).SetFloat64(1)
		for range st {
			r.Mul(r, x)
		}
		v, _ := r.Float64()
		return v
	}
	for _, b2 := range []float64{0.8397685748659789, 0.7678067796924253, 0.729637229259242} {
		h := RAdamConfig{LR: 0.01, Beta1: 0.9, Beta2: b2, Eps: 1e-8}
		o := mustNew[float64](t, h, Options{Workers: 1})
		p, g := []float64{1, -2, 0.5}, []float64{0.3, -0.1, 0.2}
		if err := o.Add("p", p, g); err != nil {
			t.Fatal(err)
		}
		ref, m, v := slices.Clone(p), make([]float64, 3), make([]float64, 3)
		first := 0
		for st := 1; st <= 9; st++ {
			mustStep(t, o)
			bc1, b2t := 1-pow(0.9, st), pow(b2, st)
			bc2 := 1 - b2t
			rhoInf := 2/(1-b2) - 1
			rho := rhoInf - float64(2*float64(st)*b2t)/bc2
			if rho > 5 && first == 0 {
				first = st
			}
			for i := range ref {
				m[i] = 0.9*m[i] + 0.1*g[i]
				v[i] = b2*v[i] + (1-b2)*g[i]*g[i]
				if rho > 5 {
					r := math.Sqrt((rho - 4) * (rho - 2) * rhoInf / ((rhoInf - 4) * (rhoInf - 2) * rho))
					ref[i] -= 0.01 * m[i] / bc1 * r * math.Sqrt(bc2) / (math.Sqrt(v[i]) + 1e-8)
				} else {
					ref[i] -= 0.01 * m[i] / bc1
				}
				if d := math.Abs(p[i] - ref[i]); d > 1e-12*math.Abs(ref[i]) {
					t.Fatalf("β2 = %v, step %d (ρ_t = %.17g): p[%d] = %v, PyTorch's %v", b2, st, rho, i, p[i], ref[i])
				}
			}
		}
		if got := (RAdamConfig{Beta1: 0.9, Beta2: b2}).firstRectified(); got != int64(first) {
			t.Errorf("β2 = %v: first rectified step %d, PyTorch's %d", b2, got, first)
		}
	}
}
