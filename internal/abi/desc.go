package abi

import (
	"fmt"
	"slices"
)

// A Kernel describes an element-wise kernel: the operation sequence that
// produces each output element, written once. A kernel may also take
// scalar arguments (Args) and return sums of squares of values it computes
// (Sums, by the 16-lane rule of the reductions), as LAMB's and Adafactor's
// passes do; a grid kernel (Grid) runs over the rows of a matrix, with
// streams indexed by row or by column. Every implementation comes from it: the pure-Go reference is generated from it as Go source
// ([GoReference]), and the generators lower it ([Kernel.Lower]) to AVX2,
// AVX-512 and NEON instructions, one instruction per operation.
//
// Every operation rounds to the element type, except that FMA rounds once;
// the generated reference writes it in Go in that way, and the assembly
// uses the one instruction that does exactly that operation. So every
// level computes the same bits.
type Kernel struct {
	Name    string   // Go name of the kernel without precision and level: "adam"
	Streams []Stream // pointer parameters, in order; Streams[0] is p
	// Conds are the conditions of the mode argument that the body tests,
	// in the order the reference evaluates them.
	Conds []*Cond
	Body  []Stmt
	// Args are the kernel's scalar arguments, of the element type: Arg(name)
	// is one of them in every lane. They are per call, where rows are per
	// step. An element-wise kernel takes them after the mode, a grid kernel
	// after rows and cols (see GridSignature).
	Args []string
	// Sums are the sums the kernel returns, in order, each a float64:
	// SumSq(name, x) adds x² of every element to sum name (see SumSq).
	Sums []string
	// Unroll is the number of vectors per iteration of the AVX2 and
	// AVX-512 loops (NEON always does four): a performance choice, bounded
	// by the registers the body needs. In a grid kernel it is the number
	// of 16-element blocks per iteration.
	Unroll struct{ AVX2, AVX512 int }

	// Grid makes the kernel a grid kernel: it runs over the rows×cols
	// elements of a row-major matrix, row after row, each row in order of
	// its columns, and its streams may be indexed by row or by column
	// (Stream.Kind). Element (i, j) is element i·cols + j of a full
	// stream, element i of a row stream and element j of a column stream.
	// A grid kernel also takes the mode as an argument (not only from the
	// coefficient block), since its variants can depend on the call.
	Grid bool
}

// StreamKind says how a grid kernel indexes a stream.
type StreamKind uint8

// The stream kinds. Every stream of an element-wise kernel is full.
const (
	StreamFull StreamKind = iota // element (i, j) is element i·cols + j
	StreamRow                    // element (i, j) is element i: one value per row
	StreamCol                    // element (i, j) is element j: the same for every row
)

// The reductions (SumSq; grid kernels also RowSumSq and ColSumSq), the
// rule of README's "Exactness: the parity guarantee". Each accumulates the square of a value of the
// element type in float64, x² added by one fma (the product of two float64
// conversions of an element-type value is exact for float32, and rounded
// once with the sum for float64), into 16 lanes starting at +0: element i
// of an element-wise kernel goes to lane i mod 16, i counting from the
// start of the call, and element (i, j) of a grid kernel to lane j mod 16,
// so that a 16-element block of a row fills the lanes once (an
// element-wise kernel is a grid of one row). The lanes of a SumSq run over
// the whole call, row after row; those of a RowSumSq start at zero at each
// row. Both end with the fixed tree of the other reductions:
// l[i] += l[i+8], l[i] += l[i+4], l[i] += l[i+2], l[0] + l[1]
// (kernels.SumSquaresF32's order). A ColSumSq has no lanes: element j of
// its column stream is the chain fma(x, x, s) over the rows in order,
// starting from what the stream holds. A caller that splits a slice or a
// matrix into several calls adds the calls' sums in order itself.

// A Stream is a pointer parameter of a kernel: n elements that the body
// loads and stores. Only, when set, is the condition under which the
// stream is used at all; otherwise the pointer may be anything (nil).
type Stream struct {
	Name string
	Only *Cond
	Kind StreamKind // grid kernels: how the stream is indexed
	// F64 makes the stream float64 whatever the element type: the row
	// and column sums of a grid kernel (RowSumSq, ColSumSq).
	F64 bool
	// Half makes the stream 16-bit: its elements are the variant's half
	// type, bfloat16 or binary16, while the arithmetic stays float32 (a
	// kernel with a half stream is written for float32 only, once per
	// half type: see Mixed). A load widens exactly; a store rounds to
	// nearest, ties to even, or stochastically in the SR variant (CondSR,
	// SRBits), each by the rule of kernels.BF16FromF32 and F16FromF32.
	Half bool
	// NT makes the stores of the stream non-temporal where a level has
	// such stores (AVX2 and AVX-512: VMOVNTPS/VMOVNTPD of every whole
	// vector, when the stream starts on a vector boundary; other starts,
	// masked tails and the other levels store as usual): the same values,
	// written around the caches, for a stream that the kernel writes
	// without reading and that is read again only after the kernel returns
	// (a scratch buffer out of cache), where an ordinary store would first
	// read each line for ownership. The kernel ends with a store fence.
	NT bool
	// SRBitsOf names the stream whose stochastic-rounding bits the stores
	// of this half stream take (empty: its own, SRKeyA(key, its index)).
	// AMSGrad's vmax takes v's: with the same bits, rounding is monotone
	// (x ≤ y gives SR(x) ≤ SR(y)), so the stored max_exp_avg_sq is never
	// below the stored exp_avg_sq, as PyTorch's max of the stored values
	// keeps it; with bits of its own, vmax rounded down where v rounded up.
	SRBitsOf string
}

// SRKeyStream returns the index of the stream whose stochastic-rounding
// bits the stores of stream i take: the stream SRBitsOf names, or i.
func (k *Kernel) SRKeyStream(i int) int {
	if of := k.Streams[i].SRBitsOf; of != "" {
		return k.StreamIndex(of)
	}
	return i
}

// A Cond is a condition on the mode argument: it holds when
// mode&Mask == Value. Name is the boolean the reference gives it.
type Cond struct {
	Name        string
	Mask, Value int
	Doc         string // what the condition selects, for the reference
}

// Holds reports whether c holds for mode.
func (c *Cond) Holds(mode int) bool { return mode&c.Mask == c.Value }

// Op is an operation of a description.
type Op uint8

// The operations. Every arithmetic operation rounds its exact result once
// to the element type.
const (
	OpLoad     Op = iota // element i of a stream
	OpRow                // a coefficient of the block (the same for every element)
	OpVar                // the value of a variable
	OpMul                // a·b
	OpAdd                // a + b
	OpSub                // a - b
	OpDiv                // a / b
	OpSqrt               // sqrt(a)
	OpFMA                // a·b + c, rounded once
	OpMax                // a != a || a > b ? a : b: NaN if either is, b where they are equal
	OpSign               // a > 0 ? 1 : a < 0 ? -1 : a (so ±0 and NaN stay what they are)
	OpAbs                // |a|: a with its sign bit cleared (exact; NaN stays NaN)
	OpStore              // (lowered form only) store a into element i of a stream
	OpArg                // a scalar argument of the kernel (the same for every element)
	OpSumSq              // (lowered form only) add a² into the lanes of a sum (Value.Sum), in float64
	OpRowSumSq           // (lowered form only) add a² into the lanes of the row's sum (Value.Stream)
	OpColSumSq           // (lowered form only) stream[j] = fma(a, a, stream[j]) in float64
)

var opNames = [...]string{"load", "row", "var", "mul", "add", "sub", "div", "sqrt", "fma", "max", "sign", "abs", "store",
	"arg", "sumsq", "rowsumsq", "colsumsq"}

func (o Op) String() string { return opNames[o] }

// Args returns the number of operands of o.
func (o Op) Args() int {
	switch o {
	case OpLoad, OpRow, OpVar, OpArg:
		return 0
	case OpSqrt, OpSign, OpAbs, OpStore, OpSumSq, OpRowSumSq, OpColSumSq:
		return 1
	case OpFMA:
		return 3
	}
	return 2
}

// An Expr is an expression of a description.
type Expr struct {
	Op   Op
	Args []*Expr
	Name string // OpLoad: the stream; OpVar: the variable; OpArg: the argument
	Row  int    // OpRow
}

// Load is element i of stream s.
func Load(s string) *Expr { return &Expr{Op: OpLoad, Name: s} }

// Row is coefficient row r of the block.
func Row(r int) *Expr { return &Expr{Op: OpRow, Row: r} }

// Arg is the kernel's scalar argument a (one of Kernel.Args).
func Arg(a string) *Expr { return &Expr{Op: OpArg, Name: a} }

// Var is the current value of variable v.
func Var(v string) *Expr { return &Expr{Op: OpVar, Name: v} }

// Mul is a·b, rounded.
func Mul(a, b *Expr) *Expr { return &Expr{Op: OpMul, Args: []*Expr{a, b}} }

// Add is a + b, rounded.
func Add(a, b *Expr) *Expr { return &Expr{Op: OpAdd, Args: []*Expr{a, b}} }

// Sub is a - b, rounded.
func Sub(a, b *Expr) *Expr { return &Expr{Op: OpSub, Args: []*Expr{a, b}} }

// Div is a / b, rounded.
func Div(a, b *Expr) *Expr { return &Expr{Op: OpDiv, Args: []*Expr{a, b}} }

// Sqrt is the square root of a, rounded.
func Sqrt(a *Expr) *Expr { return &Expr{Op: OpSqrt, Args: []*Expr{a}} }

// FMA is a·b + c, rounded once.
func FMA(a, b, c *Expr) *Expr { return &Expr{Op: OpFMA, Args: []*Expr{a, b, c}} }

// Max is a != a || a > b ? a : b: NaN when either is NaN, and b when they
// are equal (so max(+0, -0) is -0 and max(-0, +0) is +0).
func Max(a, b *Expr) *Expr { return &Expr{Op: OpMax, Args: []*Expr{a, b}} }

// Sign is +1 for a > 0, -1 for a < 0, and a itself otherwise (±0, NaN).
func Sign(a *Expr) *Expr { return &Expr{Op: OpSign, Args: []*Expr{a}} }

// Abs is |a|: a with its sign bit cleared, so |±0| = +0 and |NaN| is NaN.
// It is exact: no rounding.
func Abs(a *Expr) *Expr { return &Expr{Op: OpAbs, Args: []*Expr{a}} }

// StmtKind is the kind of a statement.
type StmtKind uint8

const (
	StmtSet      StmtKind = iota // Dst = X
	StmtStore                    // stream Dst, element i = X
	StmtIf                       // if Cond { Then } else { Else }
	StmtSumSq                    // add X² into the lanes of sum Dst
	StmtRowSumSq                 // add X² into the lanes of the row's sum, stored in row stream Dst at the row's end (grid kernels)
	StmtColSumSq                 // column stream Dst, element j = fma(X, X, itself), in float64 (grid kernels)
)

// A Stmt is a statement of a description.
type Stmt struct {
	Kind       StmtKind
	Dst        string
	X          *Expr
	Cond       *Cond
	Then, Else []Stmt
}

// Set assigns x to variable v.
func Set(v string, x *Expr) Stmt { return Stmt{Kind: StmtSet, Dst: v, X: x} }

// Store writes x to element i of stream s.
func Store(s string, x *Expr) Stmt { return Stmt{Kind: StmtStore, Dst: s, X: x} }

// SumSq adds the square of x to sum s (one of Kernel.Sums), in float64
// by the 16-lane rule of the reductions (see above).
func SumSq(s string, x *Expr) Stmt { return Stmt{Kind: StmtSumSq, Dst: s, X: x} }

// RowSumSq adds x² into the lanes of the row's sum, which is stored, after
// the row's last element, into element i of the float64 row stream s (grid
// kernels).
func RowSumSq(s string, x *Expr) Stmt { return Stmt{Kind: StmtRowSumSq, Dst: s, X: x} }

// ColSumSq sets element j of the float64 column stream s to fma(x, x, s[j])
// (grid kernels).
func ColSumSq(s string, x *Expr) Stmt { return Stmt{Kind: StmtColSumSq, Dst: s, X: x} }

// If runs then when c holds.
func If(c *Cond, then ...Stmt) Stmt { return Stmt{Kind: StmtIf, Cond: c, Then: then} }

// IfElse runs then when c holds, and els when it does not.
func IfElse(c *Cond, then, els []Stmt) Stmt {
	return Stmt{Kind: StmtIf, Cond: c, Then: then, Else: els}
}

// Mask is the union of the mode bits the conditions test: the assembly
// masks the mode with it before dispatching, so that every mode value
// means what it means to the reference.
func (k *Kernel) Mask() int {
	m := 0
	for _, c := range k.Conds {
		m |= c.Mask
	}
	return m
}

// Variant is one specialised loop of a kernel: the mode values that select
// it (all of 0…Mask that give the conditions the same truth values), the
// first of which is Mode.
type Variant struct {
	Mode  int
	Modes []int
}

// Variants returns the distinct variants of the kernel, by first mode.
func (k *Kernel) Variants() []Variant {
	var out []Variant
	key := func(m int) (s string) {
		for _, c := range k.Conds {
			s += fmt.Sprint(c.Holds(m))
		}
		return s
	}
	idx := map[string]int{}
	for m := 0; m <= k.Mask(); m++ {
		if k.Mask()&m != m {
			continue // bits outside the mask: never seen after masking
		}
		kk := key(m)
		if i, ok := idx[kk]; ok {
			out[i].Modes = append(out[i].Modes, m)
			continue
		}
		idx[kk] = len(out)
		out = append(out, Variant{Mode: m, Modes: []int{m}})
	}
	return out
}

// Canon returns the first mode of the variant that mode (any value)
// selects.
func (k *Kernel) Canon(mode int) int {
	mode &= k.Mask()
	for _, v := range k.Variants() {
		if slices.Contains(v.Modes, mode) {
			return v.Mode
		}
	}
	panic("unreachable")
}

// StreamIndex returns the index of stream s.
func (k *Kernel) StreamIndex(s string) int {
	for i, st := range k.Streams {
		if st.Name == s {
			return i
		}
	}
	panic(fmt.Sprintf("kernel %s has no stream %q", k.Name, s))
}

// ArgIndex returns the index of scalar argument a.
func (k *Kernel) ArgIndex(a string) int {
	if i := slices.Index(k.Args, a); i >= 0 {
		return i
	}
	panic(fmt.Sprintf("kernel %s has no argument %q", k.Name, a))
}

// SumIndex returns the index of sum s.
func (k *Kernel) SumIndex(s string) int {
	if i := slices.Index(k.Sums, s); i >= 0 {
		return i
	}
	panic(fmt.Sprintf("kernel %s has no sum %q", k.Name, s))
}

// A Value is one operation of a lowered body: its result is the value of
// that index. Coefficient rows and loads are values too, so that every
// operand is a value index.
type Value struct {
	Op     Op
	Args   []int // operand values
	Stream int   // OpLoad, OpStore, OpRowSumSq, OpColSumSq: index into Kernel.Streams
	// SR marks a store into a half stream that rounds stochastically (the
	// mode selects CondSR); other stores into half streams round to
	// nearest, ties to even.
	SR  bool
	Row int // OpRow
	Arg int // OpArg: index into Kernel.Args
	Sum int // OpSumSq: index into Kernel.Sums
	Var string
	// Dies[j] reports whether this is the last use of Args[j]: the result
	// may overwrite it. A value that occurs more than once in Args dies at
	// its last occurrence only; rows, arguments and loads of row streams
	// (values the same for many vectors: Kernel.Fixed) never die.
	Dies []bool
}

// Lower returns the body of k for mode, as the sequence of values that the
// assembly computes for each vector: the statements whose conditions hold,
// in order, each expression evaluated operands first, left to right; a
// stream is loaded once, where it is first used, and a row appears once.
func (k *Kernel) Lower(mode int) []Value {
	vals, _ := k.LowerUntil(mode, "")
	return vals
}

// LowerUntil is Lower stopped before the first statement that sets
// variable stop, which returns also the values of the variables there (a
// generator that replaces the end of a body, as AdamFast does, continues
// from them). The variables named in live are used after the end; no
// other value is.
func (k *Kernel) LowerUntil(mode int, stop string, live ...string) ([]Value, map[string]int) {
	l := &lowering{k: k, vars: map[string]int{}, loads: map[int]int{}, rows: map[int]int{}, args: map[int]int{},
		stored: map[int]bool{}}
	l.stmts(k.Body, mode, stop)
	if stop != "" && !l.stopped {
		panic(fmt.Sprintf("kernel %s: no statement sets %q", k.Name, stop))
	}
	vals := l.vals
	last := map[int]int{}
	for i, v := range vals {
		for _, a := range v.Args {
			last[a] = i
		}
	}
	for _, v := range live {
		x, ok := l.vars[v]
		if !ok {
			panic(fmt.Sprintf("kernel %s: no variable %q at %q", k.Name, v, stop))
		}
		last[x] = len(vals)
	}
	for i := range vals {
		v := &vals[i]
		v.Dies = make([]bool, len(v.Args))
		for j, a := range v.Args {
			v.Dies[j] = last[a] == i && !k.Fixed(vals[a]) && !slices.Contains(v.Args[j+1:], a)
		}
	}
	return vals, l.vars
}

type lowering struct {
	k       *Kernel
	vals    []Value
	vars    map[string]int
	loads   map[int]int // stream → value
	rows    map[int]int // row → value
	args    map[int]int // argument → value
	stored  map[int]bool
	stopped bool
}

func (l *lowering) stmts(ss []Stmt, mode int, stop string) {
	for _, s := range ss {
		if l.stopped {
			return
		}
		switch s.Kind {
		case StmtSet:
			if s.Dst == stop {
				l.stopped = true
				return
			}
			l.vars[s.Dst] = l.expr(s.X)
		case StmtStore:
			st := l.k.StreamIndex(s.Dst)
			x := l.expr(s.X)
			sr := l.k.Streams[st].Half && l.k.HasHalf() && CondSR.Holds(mode)
			l.vals = append(l.vals, Value{Op: OpStore, Args: []int{x}, Stream: st, SR: sr})
			l.stored[st] = true
		case StmtSumSq:
			x := l.expr(s.X)
			l.vals = append(l.vals, Value{Op: OpSumSq, Args: []int{x}, Sum: l.k.SumIndex(s.Dst)})
		case StmtRowSumSq, StmtColSumSq:
			st := l.k.StreamIndex(s.Dst)
			want, op := StreamRow, OpRowSumSq
			if s.Kind == StmtColSumSq {
				want, op = StreamCol, OpColSumSq
			}
			if !l.k.Grid || l.k.Streams[st].Kind != want || !l.k.Streams[st].F64 {
				panic(fmt.Sprintf("kernel %s: %v into stream %s, not a float64 stream of that kind of a grid kernel", l.k.Name, op, s.Dst))
			}
			l.vals = append(l.vals, Value{Op: op, Args: []int{l.expr(s.X)}, Stream: st})
		case StmtIf:
			if s.Cond.Holds(mode) {
				l.stmts(s.Then, mode, stop)
			} else {
				l.stmts(s.Else, mode, stop)
			}
		}
	}
}

func (l *lowering) expr(x *Expr) int {
	switch x.Op {
	case OpVar:
		v, ok := l.vars[x.Name]
		if !ok {
			panic(fmt.Sprintf("kernel %s: variable %s used before it is set", l.k.Name, x.Name))
		}
		return v
	case OpLoad:
		st := l.k.StreamIndex(x.Name)
		if l.stored[st] {
			panic(fmt.Sprintf("kernel %s: stream %s loaded after it is stored", l.k.Name, x.Name))
		}
		if v, ok := l.loads[st]; ok {
			return v
		}
		l.loads[st] = l.add(Value{Op: OpLoad, Stream: st})
		return l.loads[st]
	case OpRow:
		if v, ok := l.rows[x.Row]; ok {
			return v
		}
		l.rows[x.Row] = l.add(Value{Op: OpRow, Row: x.Row})
		return l.rows[x.Row]
	case OpArg:
		a := l.k.ArgIndex(x.Name)
		if v, ok := l.args[a]; ok {
			return v
		}
		l.args[a] = l.add(Value{Op: OpArg, Arg: a})
		return l.args[a]
	}
	if len(x.Args) != x.Op.Args() {
		panic(fmt.Sprintf("kernel %s: %v with %d operands", l.k.Name, x.Op, len(x.Args)))
	}
	args := make([]int, len(x.Args))
	for i, a := range x.Args {
		args[i] = l.expr(a)
	}
	return l.add(Value{Op: x.Op, Args: args})
}

func (l *lowering) add(v Value) int {
	l.vals = append(l.vals, v)
	return len(l.vals) - 1
}

// Fixed reports whether value v is the same for every vector of a row, so
// that it is computed once and never overwritten: a coefficient row, an
// argument, or a load of a row stream.
func (k *Kernel) Fixed(v Value) bool {
	return v.Op == OpRow || v.Op == OpArg || v.Op == OpLoad && k.Streams[v.Stream].Kind == StreamRow
}

// Rows returns the coefficient rows that vals use.
func Rows(vals []Value) []int {
	var rows []int
	for _, v := range vals {
		if v.Op == OpRow {
			rows = append(rows, v.Row)
		}
		if v.Op == OpSign {
			rows = append(rows, SignRows...)
		}
		if v.Op == OpAbs {
			rows = append(rows, AbsRows...)
		}
	}
	slices.Sort(rows)
	return slices.Compact(rows)
}

// SignRows are the rows that Sign uses in the assembly, as constants: 1,
// and -0 (the sign bit, which also compares equal to 0).
var SignRows = []int{RowOne, RowNegZero}

// AbsRows are the rows that Abs uses in the assembly, as constants: -0,
// the sign bit that it clears.
var AbsRows = []int{RowNegZero}
