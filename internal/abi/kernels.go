package abi

// The element-wise kernels. Each is its operation sequence, element by
// element (DESIGN.md §3); the doc comment of the kernel's exported function
// in package kernels shows the same sequence. The generated reference
// (kernels/kernels_generic_gen.go) reads as these descriptions do.

// Elementwise lists the described kernels, in the order the generators
// write them.
var Elementwise = []*Kernel{SGD, Momentum, Adam, Lion, Adagrad, RMSprop, SGDKeep}

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
