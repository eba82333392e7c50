package abi

// The element-wise kernels. Each is its operation sequence, element by
// element (DESIGN.md §3); the doc comment of the kernel's exported function
// in package kernels shows the same sequence. The generated reference
// (kernels/kernels_generic_gen.go) reads as these descriptions do.

// Elementwise lists the described kernels, in the order the generators
// write them.
var Elementwise = []*Kernel{SGD, Momentum, Adam, Lion, Adagrad, RMSprop, AdafactorVariance}

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

	CondLionWD = &Cond{Name: "decoupled", Mask: LionWD, Value: LionWD, Doc: "weight decay: p = p·decay"}

	CondAdagradWD = &Cond{Name: "coupled", Mask: AdagradWD, Value: AdagradWD, Doc: "coupled weight decay"}

	CondRMSpropWD       = &Cond{Name: "coupled", Mask: RMSpropWD, Value: RMSpropWD, Doc: "coupled weight decay"}
	CondRMSpropCentered = &Cond{Name: "centered", Mask: RMSpropCentered, Value: RMSpropCentered, Doc: "centered: subtract the square of the gradient's average"}
	CondRMSpropMomentum = &Cond{Name: "momentum", Mask: RMSpropMomentum, Value: RMSpropMomentum, Doc: "momentum: p moves by the buffer"}

	CondAdafactorWD       = &Cond{Name: "decoupled", Mask: AdafactorWD, Value: AdafactorWD, Doc: "weight decay: p = p·decay"}
	CondAdafactorBig      = &Cond{Name: "big", Mask: AdafactorBig, Value: AdafactorBig, Doc: "lerp weight ≥ 0.5: fma(w - 1, d, end)"}
	CondAdafactorFactored = &Cond{Name: "factored", Mask: AdafactorFactored, Value: AdafactorFactored, Doc: "factored: x = row·col/mean"}
)

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

// Adam is Adam and AdamW, with AMSGrad:
//
//	g := grad·gs
//	if decoupled { p = p·decay } else if coupled { g = fma(wd, p, g) }
//	m = fma(c1, g - m, m)
//	v = fma(c2·g, g, β2·v)
//	vv := amsgrad ? (vmax = max(vmax, v)) : v
//	d := fma(sqrt(vv), ib2, eps)
//	p = fma(-a, m/d, p)
var Adam = &Kernel{
	Name: "adam",
	Streams: []Stream{{Name: "p"}, {Name: "grad"}, {Name: "m"}, {Name: "v"},
		{Name: "vmax", Only: CondAMSGrad}},
	Conds: []*Cond{CondAdamDecoupled, CondAdamCoupled, CondAMSGrad},
	Body: []Stmt{
		gradient(),
		Set("p", Load("p")),
		If(CondAdamDecoupled, Set("p", Mul(Var("p"), Row(RowDecay)))),
		If(CondAdamCoupled, Set("g", FMA(Row(RowWD), Var("p"), Var("g")))),
		Set("m", FMA(Row(RowC1), Sub(Var("g"), Load("m")), Load("m"))),
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
// Optimization Algorithms"), with the interpolations in the lerp form of
// Adam's m:
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
//		ga = fma(c2, g - ga, ga)
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
// 1-α) is the fma of Adam's m.
var RMSprop = &Kernel{
	Name: "rmsprop",
	Streams: []Stream{{Name: "p"}, {Name: "grad"}, {Name: "sq"},
		{Name: "buf", Only: CondRMSpropMomentum}, {Name: "gavg", Only: CondRMSpropCentered}},
	Conds: []*Cond{CondRMSpropWD, CondRMSpropCentered, CondRMSpropMomentum},
	Body: []Stmt{
		gradient(),
		Set("p", Load("p")),
		If(CondRMSpropWD, Set("g", FMA(Row(RowWD), Var("p"), Var("g")))),
		Set("sq", FMA(Mul(Row(RowC2), Var("g")), Var("g"), Mul(Row(RowBeta2), Load("sq")))),
		Store("sq", Var("sq")),
		IfElse(CondRMSpropCentered,
			[]Stmt{
				Set("ga", FMA(Row(RowC2), Sub(Var("g"), Load("gavg")), Load("gavg"))),
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

// The Adafactor kernels (torch.optim.Adafactor). A step of a factored
// parameter (a matrix, or a batch of them) takes three passes over it:
// AdafactorSums, then, once the row and column factors are updated from
// those sums, AdafactorNorms, then, once the step size is known from its
// sums, AdafactorUpdate; a vector takes AdafactorVariance and the last two
// (not factored). Between the passes the caller works on scalars and on
// the factors (package kernels: Set.AdafactorFactorsF32 and
// AdafactorStepSize).

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
// update = var_estimate.clamp_(min=eps1²).rsqrt_(); update.mul_(grad):
//
//	x := factored ? (rv·cv)/rm : cv        // vector: cv is the variance
//	x = max(x, eps1²)                       // NaN stays NaN
//	r := 1/sqrt(x)
//	g := grad·gs
//	u := r·g
//
// rv is the row's row_var, cv the column's col_var, rm the clamped mean of
// row_var.
func adafactorU() []Stmt {
	return []Stmt{
		IfElse(CondAdafactorFactored,
			[]Stmt{Set("x", Div(Mul(Load("rv"), Load("cv")), Arg("rm")))},
			[]Stmt{Set("x", Load("cv"))}),
		Set("x", Max(Var("x"), Row(RowEps))),
		Set("r", Div(Row(RowOne), Sqrt(Var("x")))),
		gradient(),
		Set("u", Mul(Var("r"), Var("g"))),
	}
}

// adafactorStreams are the streams of the last two passes: for a vector
// (not factored), one row whose columns are the elements, and cv the
// variance.
var adafactorStreams = []Stream{{Name: "p"}, {Name: "grad"},
	{Name: "rv", Kind: StreamRow, Only: CondAdafactorFactored}, {Name: "cv", Kind: StreamCol}}

// AdafactorNorms is the second pass: the sums of squares of the update u
// (adafactorU) and of p (before the weight decay), in float64:
//
//	u2 += u², p2 += p²       (16 lanes by j mod 16 over the call, then the tree)
var AdafactorNorms = &Kernel{
	Name: "adafactorNorms", Grid: true,
	Streams: adafactorStreams,
	Conds:   []*Cond{CondAdafactorFactored},
	Args:    []string{"rm"},
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
	Args:    []string{"rm", "s"},
	Body: append(adafactorU(),
		Set("p", Load("p")),
		If(CondAdafactorWD, Set("p", Mul(Var("p"), Row(RowDecay)))),
		Store("p", FMA(Var("u"), Arg("s"), Var("p")))),
	Unroll: struct{ AVX2, AVX512 int }{1, 2},
}
