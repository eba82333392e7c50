package abi

// The element-wise kernels. Each is its operation sequence, element by
// element (README, "Exactness: the parity guarantee"); the doc comment of the kernel's exported function
// in package kernels shows the same sequence. The generated reference
// (kernels/kernels_generic_gen.go) reads as these descriptions do.

// Elementwise lists the described kernels, in the order the generators
// write them.
var Elementwise = []*Kernel{SGD, Momentum, Adam, Lion, Adagrad, RMSprop,
	Adamax, Adadelta, NAdam, RAdam, LAMBMoments, LAMBApply, LAMBApplyStored, LAMBMomentsTo, SGDKeep, AdafactorVariance}

// Grids lists the described grid kernels, in the order the generators
// write them.
var Grids = []*Kernel{AdafactorSums, AdafactorNorms, AdafactorUpdate}

// The conditions of the modes.
var (
	CondSGDWD = &Cond{Name: "coupled", Mask: ModeWD, Value: ModeWD, Doc: "coupled weight decay"}

	CondNesterov = &Cond{Name: "nesterov", Mask: ModeNesterov, Value: ModeNesterov, Doc: "Nesterov momentum"}
	CondFirst    = &Cond{Name: "first", Mask: ModeFirst, Value: ModeFirst, Doc: "first step: the buffer is set to g"}

	CondAdamDecoupled = &Cond{Name: "decoupled", Mask: AdamWDMask, Value: AdamWDDecoupled, Doc: "AdamW: p = p·decay"}
	CondAdamCoupled   = &Cond{Name: "coupled", Mask: AdamWDMask, Value: AdamWDCoupled, Doc: "Adam: g = fma(wd, p, g)"}
	CondAMSGrad       = &Cond{Name: "amsgrad", Mask: AdamAMSGrad, Value: AdamAMSGrad, Doc: "AMSGrad: divide by the running maximum of v"}
	CondAdamBig       = &Cond{Name: "big", Mask: AdamBig, Value: AdamBig, Doc: bigDoc}

	CondLionWD = &Cond{Name: "decoupled", Mask: LionWD, Value: LionWD, Doc: "weight decay: p = p·decay"}

	CondAdagradWD = &Cond{Name: "coupled", Mask: AdagradWD, Value: AdagradWD, Doc: "coupled weight decay"}

	CondRMSpropWD       = &Cond{Name: "coupled", Mask: RMSpropWD, Value: RMSpropWD, Doc: "coupled weight decay"}
	CondRMSpropCentered = &Cond{Name: "centered", Mask: RMSpropCentered, Value: RMSpropCentered, Doc: "centered: subtract the square of the gradient's average"}
	CondRMSpropMomentum = &Cond{Name: "momentum", Mask: RMSpropMomentum, Value: RMSpropMomentum, Doc: "momentum: p moves by the buffer"}
	CondRMSpropBig      = &Cond{Name: "big", Mask: RMSpropBig | RMSpropCentered, Value: RMSpropBig | RMSpropCentered, Doc: "centered, " + bigDoc}

	CondAdamaxWD  = &Cond{Name: "coupled", Mask: AdamaxWD, Value: AdamaxWD, Doc: "coupled weight decay"}
	CondAdamaxBig = &Cond{Name: "big", Mask: AdamaxBig, Value: AdamaxBig, Doc: bigDoc}

	CondAdadeltaWD = &Cond{Name: "coupled", Mask: AdadeltaWD, Value: AdadeltaWD, Doc: "coupled weight decay"}

	CondNAdamDecoupled = &Cond{Name: "decoupled", Mask: NAdamWDMask, Value: NAdamWDDecoupled, Doc: "decoupled weight decay: p = p·decay"}
	CondNAdamCoupled   = &Cond{Name: "coupled", Mask: NAdamWDMask, Value: NAdamWDCoupled, Doc: "coupled weight decay: g = fma(wd, p, g)"}
	CondNAdamBig       = &Cond{Name: "big", Mask: NAdamBig, Value: NAdamBig, Doc: bigDoc}

	CondRAdamDecoupled = &Cond{Name: "decoupled", Mask: RAdamWDMask, Value: RAdamWDDecoupled, Doc: "decoupled weight decay: p = p·decay"}
	CondRAdamCoupled   = &Cond{Name: "coupled", Mask: RAdamWDMask, Value: RAdamWDCoupled, Doc: "coupled weight decay: g = fma(wd, p, g)"}
	CondRAdamRect      = &Cond{Name: "rect", Mask: RAdamRect, Value: RAdamRect, Doc: "rectified step: divide m by sqrt(v) + eps"}
	CondRAdamBig       = &Cond{Name: "big", Mask: RAdamBig, Value: RAdamBig, Doc: bigDoc}

	CondLAMBWD   = &Cond{Name: "decay", Mask: LAMBWD, Value: LAMBWD, Doc: "weight decay in the update direction"}
	CondLAMBKeep = &Cond{Name: "keep", Mask: LAMBKeep, Value: LAMBKeep, Doc: "the direction is stored over the gradient"}

	CondAdafactorWD       = &Cond{Name: "decoupled", Mask: AdafactorWD, Value: AdafactorWD, Doc: "weight decay: p = p·decay"}
	CondAdafactorBig      = &Cond{Name: "big", Mask: AdafactorBig, Value: AdafactorBig, Doc: "lerp weight ≥ 0.5: fma(w - 1, d, end)"}
	CondAdafactorFactored = &Cond{Name: "factored", Mask: AdafactorFactored, Value: AdafactorFactored, Doc: "factored: the variance estimate is row_var·col_var/mean, by the row and column scales"}
)

// lerp sets v to PyTorch's lerp(self, end, w) (torch.lerp, whose CPU
// kernel chooses its form by the weight):
//
//	d := end - self
//	v = big ? fma(w - 1, d, end) : fma(w, d, self)     // big: w ≥ 0.5
//
// with row holding w - 1 or w (computed in the element type, both exact).
// The second form keeps a small end where self is much larger: with β1 =
// 0 (w = 1), m = g exactly, where fma(1, g - m, m) loses g to the rounding
// of g - m.
func lerp(big *Cond, v string, row int, end, self *Expr) Stmt {
	return IfElse(big,
		[]Stmt{Set(v, FMA(Row(row), Sub(end, self), end))},
		[]Stmt{Set(v, FMA(Row(row), Sub(end, self), self))})
}

// bigDoc is the doc of the modes of the second lerp form.
const bigDoc = "lerp weight ≥ 0.5: fma(w - 1, end - self, end)"

// gradient is the prelude of every optimizer: g = grad·gs, where gs is the
// gradient scale, negated when maximizing.
func gradient() Stmt { return Set("g", Mul(Load("grad"), Row(RowGS))) }

// SGD is plain stochastic gradient descent:
//
//	g := grad·gs
//	if coupled { g = fma(wd, p, g) }
//	p = fma(-lr, g, p)
var SGD = &Kernel{
	Name:    "sgd",
	Streams: []Stream{{Name: "p"}, {Name: "grad"}},
	Conds:   []*Cond{CondSGDWD},
	Body: []Stmt{
		gradient(),
		Set("p", Load("p")),
		If(CondSGDWD, Set("g", FMA(Row(RowWD), Var("p"), Var("g")))),
		Store("p", FMA(Row(RowNegLR), Var("g"), Var("p"))),
	},
	Unroll: struct{ AVX2, AVX512 int }{4, 4},
}

// Momentum is SGD with heavy-ball or Nesterov momentum:
//
//	g := grad·gs
//	if coupled { g = fma(wd, p, g) }
//	b := first ? g : fma(μ, buf, damp·g)
//	buf = b
//	dir := nesterov ? fma(μ, b, g) : b
//	p = fma(-lr, dir, p)
var Momentum = &Kernel{
	Name:    "momentum",
	Streams: []Stream{{Name: "p"}, {Name: "grad"}, {Name: "buf"}},
	Conds:   []*Cond{CondSGDWD, CondNesterov, CondFirst},
	Body: []Stmt{
		gradient(),
		Set("p", Load("p")),
		If(CondSGDWD, Set("g", FMA(Row(RowWD), Var("p"), Var("g")))),
		IfElse(CondFirst,
			[]Stmt{Set("b", Var("g"))},
			[]Stmt{Set("b", FMA(Row(RowMu), Load("buf"), Mul(Row(RowDamp), Var("g"))))}),
		Store("buf", Var("b")),
		Set("dir", Var("b")),
		If(CondNesterov, Set("dir", FMA(Row(RowMu), Var("b"), Var("g")))),
		Store("p", FMA(Row(RowNegLR), Var("dir"), Var("p"))),
	},
	Unroll: struct{ AVX2, AVX512 int }{3, 4},
}

// AdamFastSplit is the variable whose computation AdamFast replaces: its
// generators lower Adam up to the statement that sets it, and continue
// with their estimate sequence from the variables AdamFastLive.
const AdamFastSplit = "d"

// AdamFastLive are the variables AdamFast's estimate sequence starts from:
// the second moment it divides by, m and p.
var AdamFastLive = []string{"vv", "m", "p"}

// AdamFastOf is the block of AdamFast's split: a kernel of split k/AdamFastOf
// sends the last k vectors of every AdamFastOf consecutive vectors of its
// unrolled loop through the estimate sequence and the others through
// Adam's, and the vectors after the last whole block through the estimates
// only when k = AdamFastOf. The generators write one kernel per k ≥ 1 on
// every level and precision with estimate instructions; k = 0 is Adam.
const AdamFastOf = 4

// AdamFastEstimates reports whether vector j (from 0) of an unrolled
// iteration of u vectors (u a multiple of AdamFastOf; 1 in the loops after
// the unrolled one) takes the estimate path in AdamFast of split
// k/AdamFastOf.
func AdamFastEstimates(j, u, k int) bool {
	if u == 1 {
		return k == AdamFastOf
	}
	if u%AdamFastOf != 0 {
		panic("AdamFast: an unrolled iteration of a split kernel is whole blocks")
	}
	return j%AdamFastOf >= AdamFastOf-k
}

// Adam is Adam and AdamW, with AMSGrad:
//
//	g := grad·gs
//	if decoupled { p = p·decay } else if coupled { g = fma(wd, p, g) }
//	m = lerp(m, g, c1)     // c1 = 1-β1: fma(c1, g - m, m); from 0.5 on fma(c1 - 1, g - m, g)
//	v = fma(c2·g, g, β2·v)
//	vv := amsgrad ? (vmax = max(vmax, v)) : v
//	d := fma(sqrt(vv), ib2, eps)
//	p = fma(-a, m/d, p)
var Adam = &Kernel{
	Name: "adam",
	Streams: []Stream{{Name: "p"}, {Name: "grad"}, {Name: "m"}, {Name: "v"},
		{Name: "vmax", Only: CondAMSGrad, SRBitsOf: "v"}},
	Conds: []*Cond{CondAdamDecoupled, CondAdamCoupled, CondAMSGrad, CondAdamBig},
	Body: []Stmt{
		gradient(),
		Set("p", Load("p")),
		If(CondAdamDecoupled, Set("p", Mul(Var("p"), Row(RowDecay)))),
		If(CondAdamCoupled, Set("g", FMA(Row(RowWD), Var("p"), Var("g")))),
		lerp(CondAdamBig, "m", RowC1, Var("g"), Load("m")),
		Store("m", Var("m")),
		Set("v", FMA(Mul(Row(RowC2), Var("g")), Var("g"), Mul(Row(RowBeta2), Load("v")))),
		Store("v", Var("v")),
		Set("vv", Var("v")),
		If(CondAMSGrad,
			Set("vv", Max(Load("vmax"), Var("v"))),
			Store("vmax", Var("vv"))),
		Set("d", FMA(Sqrt(Var("vv")), Row(RowIB2), Row(RowEps))),
		Store("p", FMA(Row(RowNegA), Div(Var("m"), Var("d")), Var("p"))),
	},
	Unroll: struct{ AVX2, AVX512 int }{2, 4},
}

// Lion is the Lion optimizer (Chen et al. 2023, "Symbolic Discovery of
// Optimization Algorithms"), with the interpolations in the first lerp
// form of Adam's m whatever the weights (Lion has no PyTorch version to
// follow):
//
//	g := grad·gs
//	if decoupled { p = p·decay }
//	u := g - m
//	c := fma(c1, u, m)
//	m = fma(c2, u, m)
//	p = fma(-lr, sign(c), p)
//
// u is computed once; c and the new m both use the old m.
var Lion = &Kernel{
	Name:    "lion",
	Streams: []Stream{{Name: "p"}, {Name: "grad"}, {Name: "m"}},
	Conds:   []*Cond{CondLionWD},
	Body: []Stmt{
		gradient(),
		Set("p", Load("p")),
		If(CondLionWD, Set("p", Mul(Var("p"), Row(RowDecay)))),
		Set("u", Sub(Var("g"), Load("m"))),
		Set("c", FMA(Row(RowC1), Var("u"), Load("m"))),
		Store("m", FMA(Row(RowC2), Var("u"), Load("m"))),
		Store("p", FMA(Row(RowNegLR), Sign(Var("c")), Var("p"))),
	},
	Unroll: struct{ AVX2, AVX512 int }{3, 4},
}

// Adagrad is torch.optim.Adagrad (Duchi et al. 2011), dense, with the
// learning-rate decay folded into the coefficient -clr, clr =
// lr/(1 + (t-1)·lr_decay):
//
//	g := grad·gs
//	if coupled { g = fma(wd, p, g) }
//	s = fma(g, g, s)
//	d := sqrt(s) + eps
//	p = fma(-clr, g/d, p)
//
// PyTorch's state_sum.addcmul_(g, g) is the fma; std = sqrt(s) + eps and
// p.addcdiv_(g, std, value=-clr) are written as Adam's last two steps are.
var Adagrad = &Kernel{
	Name:    "adagrad",
	Streams: []Stream{{Name: "p"}, {Name: "grad"}, {Name: "sum"}},
	Conds:   []*Cond{CondAdagradWD},
	Body: []Stmt{
		gradient(),
		Set("p", Load("p")),
		If(CondAdagradWD, Set("g", FMA(Row(RowWD), Var("p"), Var("g")))),
		Set("s", FMA(Var("g"), Var("g"), Load("sum"))),
		Store("sum", Var("s")),
		Set("d", Add(Sqrt(Var("s")), Row(RowEps))),
		Store("p", FMA(Row(RowNegLR), Div(Var("g"), Var("d")), Var("p"))),
	},
	Unroll: struct{ AVX2, AVX512 int }{3, 4},
}

// RMSprop is torch.optim.RMSprop, with the running averages in the forms of
// Adam's v and m (c2 = 1-α, β2 row = α):
//
//	g := grad·gs
//	if coupled { g = fma(wd, p, g) }
//	sq = fma(c2·g, g, α·sq)
//	if centered {
//		ga = lerp(ga, g, 1-α)  // as Adam's m (row c1)
//		d := sqrt(sq - ga·ga) + eps
//	} else {
//		d := sqrt(sq) + eps
//	}
//	if momentum {
//		buf = fma(μ, buf, g/d)
//		p = fma(-lr, buf, p)
//	} else {
//		p = fma(-lr, g/d, p)
//	}
//
// sq - ga·ga is a rounded product and a rounded subtraction, as PyTorch's
// addcmul_(grad_avg, grad_avg, value=-1) computes it; grad_avg.lerp_(g,
// 1-α) is Adam's m's lerp (row c1 holds its weight).
var RMSprop = &Kernel{
	Name: "rmsprop",
	Streams: []Stream{{Name: "p"}, {Name: "grad"}, {Name: "sq"},
		{Name: "buf", Only: CondRMSpropMomentum}, {Name: "gavg", Only: CondRMSpropCentered}},
	Conds: []*Cond{CondRMSpropWD, CondRMSpropCentered, CondRMSpropMomentum, CondRMSpropBig},
	Body: []Stmt{
		gradient(),
		Set("p", Load("p")),
		If(CondRMSpropWD, Set("g", FMA(Row(RowWD), Var("p"), Var("g")))),
		Set("sq", FMA(Mul(Row(RowC2), Var("g")), Var("g"), Mul(Row(RowBeta2), Load("sq")))),
		Store("sq", Var("sq")),
		IfElse(CondRMSpropCentered,
			[]Stmt{
				lerp(CondRMSpropBig, "ga", RowC1, Var("g"), Load("gavg")),
				Store("gavg", Var("ga")),
				Set("d", Add(Sqrt(Sub(Var("sq"), Mul(Var("ga"), Var("ga")))), Row(RowEps))),
			},
			[]Stmt{Set("d", Add(Sqrt(Var("sq")), Row(RowEps)))}),
		IfElse(CondRMSpropMomentum,
			[]Stmt{
				Set("b", FMA(Row(RowMu), Load("buf"), Div(Var("g"), Var("d")))),
				Store("buf", Var("b")),
				Store("p", FMA(Row(RowNegLR), Var("b"), Var("p"))),
			},
			[]Stmt{Store("p", FMA(Row(RowNegLR), Div(Var("g"), Var("d")), Var("p")))}),
	},
	Unroll: struct{ AVX2, AVX512 int }{2, 4},
}

// Adamax is torch.optim.Adamax (Kingma and Ba 2015, §7.1: Adam with the
// infinity norm), with exp_avg in the lerp form of Adam's m and clr =
// lr/(1 - β1^t) in the coefficient -clr (row nega):
//
//	g := grad·gs
//	if coupled { g = fma(wd, p, g) }
//	m = lerp(m, g, c1)     // c1 = 1-β1: fma(c1, g - m, m); from 0.5 on fma(c1 - 1, g - m, g)
//	u = max(β2·u, |g| + eps)
//	p = fma(-clr, m/u, p)
//
// m is exp_avg, u exp_inf. PyTorch's torch.maximum(exp_inf.mul_(β2),
// grad.abs().add_(eps)) is max with β2·u first: NaN when either is NaN,
// else the larger, and |g| + eps where they are equal (only ±0 differ
// there, when eps = 0). p.addcdiv_(exp_avg, exp_inf, value=-clr) is
// written as Adam's last step is.
var Adamax = &Kernel{
	Name:    "adamax",
	Streams: []Stream{{Name: "p"}, {Name: "grad"}, {Name: "m"}, {Name: "u"}},
	Conds:   []*Cond{CondAdamaxWD, CondAdamaxBig},
	Body: []Stmt{
		gradient(),
		Set("p", Load("p")),
		If(CondAdamaxWD, Set("g", FMA(Row(RowWD), Var("p"), Var("g")))),
		lerp(CondAdamaxBig, "m", RowC1, Var("g"), Load("m")),
		Store("m", Var("m")),
		Set("u", Max(Mul(Row(RowBeta2), Load("u")), Add(Abs(Var("g")), Row(RowEps)))),
		Store("u", Var("u")),
		Store("p", FMA(Row(RowNegA), Div(Var("m"), Var("u")), Var("p"))),
	},
	Unroll: struct{ AVX2, AVX512 int }{2, 4},
}

// Adadelta is torch.optim.Adadelta (Zeiler 2012), with the running
// averages in the form of Adam's v (c2 = 1-ρ, β2 row = ρ):
//
//	g := grad·gs
//	if coupled { g = fma(wd, p, g) }
//	sq = fma(c2·g, g, ρ·sq)
//	std := sqrt(sq + eps)
//	delta := sqrt(acc + eps)/std·g
//	acc = fma(c2·delta, delta, ρ·acc)
//	p = fma(-lr, delta, p)
//
// sq is square_avg, acc acc_delta. The order is PyTorch's:
// square_avg.mul_(ρ).addcmul_(g, g, value=1-ρ) (as Adam's v), std =
// square_avg.add(eps).sqrt_(), delta = acc_delta.add(eps).sqrt_(), then
// delta.div_(std).mul_(g), each a rounded operation; acc_delta as
// square_avg, with the old acc_delta in delta; p.add_(delta, alpha=-lr)
// as SGD's step.
var Adadelta = &Kernel{
	Name:    "adadelta",
	Streams: []Stream{{Name: "p"}, {Name: "grad"}, {Name: "sq"}, {Name: "acc"}},
	Conds:   []*Cond{CondAdadeltaWD},
	Body: []Stmt{
		gradient(),
		Set("p", Load("p")),
		If(CondAdadeltaWD, Set("g", FMA(Row(RowWD), Var("p"), Var("g")))),
		Set("sq", FMA(Mul(Row(RowC2), Var("g")), Var("g"), Mul(Row(RowBeta2), Load("sq")))),
		Store("sq", Var("sq")),
		Set("std", Sqrt(Add(Var("sq"), Row(RowEps)))),
		Set("delta", Mul(Div(Sqrt(Add(Load("acc"), Row(RowEps))), Var("std")), Var("g"))),
		Store("acc", FMA(Mul(Row(RowC2), Var("delta")), Var("delta"), Mul(Row(RowBeta2), Load("acc")))),
		Store("p", FMA(Row(RowNegLR), Var("delta"), Var("p"))),
	},
	Unroll: struct{ AVX2, AVX512 int }{2, 4},
}

// NAdam is torch.optim.NAdam (Dozat 2016, "Incorporating Nesterov Momentum
// into Adam"), with its decoupled_weight_decay (NAdamW), and m and v in the
// forms of Adam's:
//
//	g := grad·gs
//	if decoupled { p = p·decay } else if coupled { g = fma(wd, p, g) }
//	m = lerp(m, g, c1)     // c1 = 1-β1: fma(c1, g - m, m); from 0.5 on fma(c1 - 1, g - m, g)
//	v = fma(c2·g, g, β2·v)
//	d := fma(sqrt(v), ib2, eps)
//	p = fma(cg, g/d, p)
//	p = fma(cm, m/d, p)
//
// with cg = -lr·(1-μ_t)/(1-μprod_t) in row neglr and cm =
// -lr·μ_{t+1}/(1-μprod_t·μ_{t+1}) in row nega (μprod_t = μ_1·…·μ_t). The
// two updates of p are PyTorch's two addcdiv_, in its order, each rounded:
// first the gradient's, then the momentum's. PyTorch's denominator is
// sqrt(v/bc2) + eps, bc2 = 1-β2^t; here, as Adam's, it is the same
// quantity fma(sqrt(v), ib2, eps) with ib2 = 1/sqrt(bc2) (one division
// fewer, other roundings).
var NAdam = &Kernel{
	Name:    "nadam",
	Streams: []Stream{{Name: "p"}, {Name: "grad"}, {Name: "m"}, {Name: "v"}},
	Conds:   []*Cond{CondNAdamDecoupled, CondNAdamCoupled, CondNAdamBig},
	Body: []Stmt{
		gradient(),
		Set("p", Load("p")),
		If(CondNAdamDecoupled, Set("p", Mul(Var("p"), Row(RowDecay)))),
		If(CondNAdamCoupled, Set("g", FMA(Row(RowWD), Var("p"), Var("g")))),
		lerp(CondNAdamBig, "m", RowC1, Var("g"), Load("m")),
		Store("m", Var("m")),
		Set("v", FMA(Mul(Row(RowC2), Var("g")), Var("g"), Mul(Row(RowBeta2), Load("v")))),
		Store("v", Var("v")),
		Set("d", FMA(Sqrt(Var("v")), Row(RowIB2), Row(RowEps))),
		Set("p", FMA(Row(RowNegLR), Div(Var("g"), Var("d")), Var("p"))),
		Store("p", FMA(Row(RowNegA), Div(Var("m"), Var("d")), Var("p"))),
	},
	Unroll: struct{ AVX2, AVX512 int }{2, 4},
}

// RAdam is torch.optim.RAdam (Liu et al. 2019, "On the Variance of the
// Adaptive Learning Rate and Beyond"), with its decoupled_weight_decay
// (RAdamW), and m and v in the forms of Adam's:
//
//	g := grad·gs
//	if decoupled { p = p·decay } else if coupled { g = fma(wd, p, g) }
//	m = lerp(m, g, c1)     // c1 = 1-β1: fma(c1, g - m, m); from 0.5 on fma(c1 - 1, g - m, g)
//	v = fma(c2·g, g, β2·v)
//	if rect {
//		d := sqrt(v) + eps
//		p = fma(-a, m/d, p)
//	} else {
//		p = fma(-a, m, p)
//	}
//
// The step is rectified when ρ_t > 5, a choice made per step in the
// coefficients. Row nega holds -a: -lr·r_t·sqrt(bc2)/bc1 when rectified,
// -lr/bc1 otherwise (bc1 = 1-β1^t, bc2 = 1-β2^t, r_t the rectification).
// PyTorch multiplies element by element, ((m/bc1)·lr)·(sqrt(bc2)/d)·r_t;
// here the scalars are one coefficient and the element sees one division
// and one fma, as in Adam's update.
var RAdam = &Kernel{
	Name:    "radam",
	Streams: []Stream{{Name: "p"}, {Name: "grad"}, {Name: "m"}, {Name: "v"}},
	Conds:   []*Cond{CondRAdamDecoupled, CondRAdamCoupled, CondRAdamRect, CondRAdamBig},
	Body: []Stmt{
		gradient(),
		Set("p", Load("p")),
		If(CondRAdamDecoupled, Set("p", Mul(Var("p"), Row(RowDecay)))),
		If(CondRAdamCoupled, Set("g", FMA(Row(RowWD), Var("p"), Var("g")))),
		lerp(CondRAdamBig, "m", RowC1, Var("g"), Load("m")),
		Store("m", Var("m")),
		Set("v", FMA(Mul(Row(RowC2), Var("g")), Var("g"), Mul(Row(RowBeta2), Load("v")))),
		Store("v", Var("v")),
		IfElse(CondRAdamRect,
			[]Stmt{
				Set("d", Add(Sqrt(Var("v")), Row(RowEps))),
				Store("p", FMA(Row(RowNegA), Div(Var("m"), Var("d")), Var("p"))),
			},
			[]Stmt{Store("p", FMA(Row(RowNegA), Var("m"), Var("p")))}),
	},
	Unroll: struct{ AVX2, AVX512 int }{2, 4},
}

// LAMB (You et al. 2019, "Large Batch Optimization for Deep Learning:
// Training BERT in 76 minutes", arXiv:1904.00962) runs in two passes over a
// parameter, because its step is scaled by the ratio of two norms of the
// whole parameter: LAMBMoments updates the moments and returns the sums of
// squares of p and of the update direction r; the caller adds the sums of
// a parameter's pieces and computes the trust ratio; LAMBApply computes r
// again from the stored moments and moves p. Both passes compute r by
// lambDirection, so that the r of the second pass is the r whose norm the
// first one measured, bit for bit.

// lambDirection is LAMB's update direction, from m, v and p:
//
//	d := fma(sqrt(v), k, e)
//	r := m/d
//	if decay { r = fma(wd, p, r) }
//
// With k = (1-β1^t)/sqrt(1-β2^t) and e = (1-β1^t)·ε (rows IB2 and Eps),
// m/d is the bias-corrected (m/(1-β1^t))/(sqrt(v/(1-β2^t)) + ε) with both
// corrections folded into the denominator; with k = 1 and e = ε it is
// spago's uncorrected m/(sqrt(v) + ε).
func lambDirection() []Stmt {
	return []Stmt{
		Set("d", FMA(Sqrt(Var("v")), Row(RowIB2), Row(RowEps))),
		Set("r", Div(Var("m"), Var("d"))),
		If(CondLAMBWD, Set("r", FMA(Row(RowWD), Var("p"), Var("r")))),
	}
}

// LAMBMoments is LAMB's first pass: Adam's moments, and the sums of
// squares of p (before the step) and of the direction r, which it stores
// over the gradient in mode keep (for LAMBApplyStored) and otherwise does
// not store. m keeps the first lerp form whatever β1 (LAMB has no PyTorch
// version; the implementations it follows update m by a product and a
// sum, not a lerp):
//
//	g := grad·gs
//	m = fma(c1, g - m, m)
//	v = fma(c2·g, g, β2·v)
//	r := lambDirection(m, v, p)
//	if keep { grad = r }
//	pp += p², rr += r²              // 16 float64 lanes, see SumSq
var LAMBMoments = &Kernel{
	Name:    "lambMoments",
	Streams: []Stream{{Name: "p"}, {Name: "grad"}, {Name: "m"}, {Name: "v"}},
	Conds:   []*Cond{CondLAMBWD, CondLAMBKeep},
	Sums:    []string{"pp", "rr"},
	Body:    lambMomentsBody(If(CondLAMBKeep, Store("grad", Var("r")))),
	Unroll:  struct{ AVX2, AVX512 int }{2, 4},
}

// lambMomentsBody is the body of LAMB's first pass, with store the
// statement that keeps the direction r (or none).
func lambMomentsBody(store Stmt) []Stmt {
	return append(append([]Stmt{
		gradient(),
		Set("p", Load("p")),
		Set("m", FMA(Row(RowC1), Sub(Var("g"), Load("m")), Load("m"))),
		Store("m", Var("m")),
		Set("v", FMA(Mul(Row(RowC2), Var("g")), Var("g"), Mul(Row(RowBeta2), Load("v")))),
		Store("v", Var("v")),
	}, lambDirection()...),
		store,
		SumSq("pp", Var("p")),
		SumSq("rr", Var("r")),
	)
}

// LAMBMomentsTo is LAMBMoments storing the direction into a stream of its
// own, r, whatever the mode, for LAMBApplyStored: the second pass then
// reads p and r, and the gradient stays as it was. r is written and not
// read, by non-temporal stores where a level has them (Stream.NT): out of
// cache an ordinary store would read every line of r before writing it.
//
//	g := grad·gs
//	m = fma(c1, g - m, m)
//	v = fma(c2·g, g, β2·v)
//	r := lambDirection(m, v, p)
//	pp += p², rr += r²
var LAMBMomentsTo = &Kernel{
	Name:    "lambMomentsTo",
	Streams: []Stream{{Name: "p"}, {Name: "grad"}, {Name: "m"}, {Name: "v"}, {Name: "r", NT: true}},
	Conds:   []*Cond{CondLAMBWD},
	Sums:    []string{"pp", "rr"},
	Body:    lambMomentsBody(Store("r", Var("r"))),
	Unroll:  struct{ AVX2, AVX512 int }{2, 4},
}

// LAMBApply is LAMB's second pass: the direction again, from the moments
// the first pass stored, and the step, f = -(step size)·(trust ratio)
// given per call:
//
//	r := lambDirection(m, v, p)
//	p = fma(f, r, p)
var LAMBApply = &Kernel{
	Name:    "lambApply",
	Streams: []Stream{{Name: "p"}, {Name: "m"}, {Name: "v"}},
	Conds:   []*Cond{CondLAMBWD},
	Args:    []string{"f"},
	Body: append([]Stmt{
		Set("p", Load("p")),
		Set("m", Load("m")),
		Set("v", Load("v")),
	}, append(lambDirection(),
		Store("p", FMA(Arg("f"), Var("r"), Var("p"))))...),
	Unroll: struct{ AVX2, AVX512 int }{2, 4},
}

// LAMBApplyStored is LAMB's second pass from the direction that the first
// pass stored in mode keep, with LAMBApply's factor f: the last operation
// of LAMBApply on the same r, so the same p bit for bit:
//
//	p = fma(f, r, p)
//
// It reads two streams where LAMBApply reads three (p, m, v).
var LAMBApplyStored = &Kernel{
	Name:    "lambApplyStored",
	Streams: []Stream{{Name: "p"}, {Name: "r"}},
	Args:    []string{"f"},
	Body:    []Stmt{Store("p", FMA(Arg("f"), Load("r"), Load("p")))},
	Unroll:  struct{ AVX2, AVX512 int }{4, 4},
}

// SGDKeep is SGD that first keeps its inputs, for a secant method
// (Barzilai–Borwein) that needs the previous iterate and gradient:
//
//	pprev = p
//	gprev = grad
//	g := grad·gs
//	if coupled { g = fma(wd, p, g) }
//	p = fma(-lr, g, p)
//
// gprev is the gradient as given, before the prelude. Its coefficients and
// modes are SGD's.
var SGDKeep = &Kernel{
	Name:    "sgdKeep",
	Streams: []Stream{{Name: "p"}, {Name: "grad"}, {Name: "pprev"}, {Name: "gprev"}},
	Conds:   []*Cond{CondSGDWD},
	Body: []Stmt{
		Set("p", Load("p")),
		Store("pprev", Var("p")),
		Store("gprev", Load("grad")),
		gradient(),
		If(CondSGDWD, Set("g", FMA(Row(RowWD), Var("p"), Var("g")))),
		Store("p", FMA(Row(RowNegLR), Var("g"), Var("p"))),
	},
	Unroll: struct{ AVX2, AVX512 int }{4, 4},
}

// The Adafactor kernels (torch.optim.Adafactor). A step of a factored
// parameter (a matrix, or a batch of them) takes three passes over it:
// AdafactorSums, then, once the row and column factors are updated from
// those sums, AdafactorNorms, then, once the step size is known from its
// sums, AdafactorUpdate; a vector takes AdafactorVariance and the last two
// (not factored). Between the passes the caller works on scalars and on
// the factors (package kernels: AdafactorFactorF32, AdafactorMeanF32,
// AdafactorScalesF32 and AdafactorStepSize).

// AdafactorVariance is the variance of a vector parameter,
// variance.lerp_(g·g, w) in PyTorch's vectorised lerp, which chooses its
// form by the weight w = t^beta2_decay:
//
//	g := grad·gs
//	gg := g·g
//	d := gg - v
//	v = big ? fma(w - 1, d, gg) : fma(w, d, v)          // big: w ≥ 0.5
//
// The c2 row holds w - 1 or w, computed in the element type.
var AdafactorVariance = &Kernel{
	Name:    "adafactorVariance",
	Streams: []Stream{{Name: "v"}, {Name: "grad"}},
	Conds:   []*Cond{CondAdafactorBig},
	Body: []Stmt{
		gradient(),
		Set("gg", Mul(Var("g"), Var("g"))),
		Set("d", Sub(Var("gg"), Load("v"))),
		IfElse(CondAdafactorBig,
			[]Stmt{Store("v", FMA(Row(RowC2), Var("d"), Var("gg")))},
			[]Stmt{Store("v", FMA(Row(RowC2), Var("d"), Load("v")))}),
	},
	Unroll: struct{ AVX2, AVX512 int }{3, 4},
}

// AdafactorSums is the first pass over a factored parameter, on whole rows:
//
//	g := grad·gs
//	rowsum[i] = Σ_j g²        (16 lanes by j mod 16, then the tree)
//	colsum[j] = fma(g, g, colsum[j])   (rows in order)
//
// in float64; the caller zeroes colsum first.
var AdafactorSums = &Kernel{
	Name: "adafactorSums", Grid: true,
	Streams: []Stream{{Name: "grad"}, {Name: "rowsum", Kind: StreamRow, F64: true},
		{Name: "colsum", Kind: StreamCol, F64: true}},
	Body: []Stmt{
		gradient(),
		RowSumSq("rowsum", Var("g")),
		ColSumSq("colsum", Var("g")),
	},
	Unroll: struct{ AVX2, AVX512 int }{1, 1},
}

// adafactorU is the update element u of Adafactor, PyTorch's
// var_estimate = row_var @ col_var; var_estimate.div_(mean);
// update = var_estimate.clamp_(min=eps1²).rsqrt_(); update.mul_(grad).
// For a factored parameter the reciprocal square roots are taken once per
// row and once per column (kernels.AdafactorScalesF32), so that an element
// costs no division and no square root:
//
//	factored: m := max(rs·cs, -1/ε1)      // = -min(rs·|cs|, 1/ε1); NaN stays NaN
//	          g' := grad·(-gs)            // = -g, exactly
//	          u := m·g'                   // = min(rs·|cs|, 1/ε1)·g, exactly
//	vector:   x := max(cs, eps1²)         // cs is the variance; NaN stays NaN
//	          r := 1/sqrt(x)
//	          g := grad·gs
//	          u := r·g
//
// where rs = 1/sqrt(row_var) of the element's row and cs =
// -1/sqrt(col_var/mean) of its column, both in the element type (a factor
// below zero counts as zero). min(rs·|cs|, 1/ε1) is 1/sqrt(max(row_var·
// col_var/mean, ε1²)) in exact arithmetic: the clamp of the variance
// estimate at ε1² is the clamp of its reciprocal square root at 1/ε1. It is
// taken on negated values (the description's max), so the gradient is
// negated too and u keeps its sign; -1/ε1 is -1/sqrt(ε1²) with ε1² in the
// element type (-Inf when it is 0).
func adafactorU() []Stmt {
	return []Stmt{
		IfElse(CondAdafactorFactored,
			[]Stmt{
				Set("m", Max(Mul(Load("rs"), Load("cs")), Row(RowAfNegClamp))),
				Set("g", Mul(Load("grad"), Row(RowAfNegGS))),
				Set("u", Mul(Var("m"), Var("g"))),
			},
			[]Stmt{
				Set("x", Max(Load("cs"), Row(RowEps))),
				Set("r", Div(Row(RowOne), Sqrt(Var("x")))),
				gradient(),
				Set("u", Mul(Var("r"), Var("g"))),
			}),
	}
}

// adafactorStreams are the streams of the last two passes: for a factored
// parameter rs, the scale of each row, and cs, that of each column (see
// adafactorU); for a vector (not factored), one row whose columns are the
// elements, and cs the variance.
var adafactorStreams = []Stream{{Name: "p"}, {Name: "grad"},
	{Name: "rs", Kind: StreamRow, Only: CondAdafactorFactored}, {Name: "cs", Kind: StreamCol}}

// AdafactorNorms is the second pass: the sums of squares of the update u
// (adafactorU) and of p (before the weight decay), in float64:
//
//	u2 += u², p2 += p²       (16 lanes by j mod 16 over the call, then the tree)
var AdafactorNorms = &Kernel{
	Name: "adafactorNorms", Grid: true,
	Streams: adafactorStreams,
	Conds:   []*Cond{CondAdafactorFactored},
	Sums:    []string{"u2", "p2"},
	Body: append(adafactorU(),
		SumSq("u2", Var("u")),
		SumSq("p2", Load("p"))),
	Unroll: struct{ AVX2, AVX512 int }{1, 1},
}

// AdafactorUpdate is the last pass, with s = -α/denom from the sums of
// AdafactorNorms; u is recomputed as AdafactorNorms computed it:
//
//	if decoupled { p = p·decay }
//	p = fma(u, s, p)
var AdafactorUpdate = &Kernel{
	Name: "adafactorUpdate", Grid: true,
	Streams: adafactorStreams,
	Conds:   []*Cond{CondAdafactorFactored, CondAdafactorWD},
	Args:    []string{"s"},
	Body: append(adafactorU(),
		Set("p", Load("p")),
		If(CondAdafactorWD, Set("p", Mul(Var("p"), Row(RowDecay)))),
		Store("p", FMA(Var("u"), Arg("s"), Var("p")))),
	Unroll: struct{ AVX2, AVX512 int }{1, 2},
}
