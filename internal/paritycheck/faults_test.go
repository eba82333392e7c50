package paritycheck

import (
	"math"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"unsafe"

	"github.com/fuseopt/fuseopt/kernels"
)

// fault is a wrong kernel: the reference's, with one of its outputs
// changed after every call.
type fault struct {
	field string // the kernel, a field of Kernels
	arg   int    // the slice argument changed (its first element), or -1
	ret   int    // the result changed, or -1
	want  string // what the failures name
	// How the argument is changed, where not as change does to its first
	// element: its first value that is not finite set to 0 (a kernel wrong
	// on special inputs only); the element after its end written; element
	// index changed (a second row, say); the first element changed by a
	// relative rel; the first element changed only where the slice does
	// not start on 16 bytes (a kernel wrong at a misaligned start), or only
	// from the second step on one slice (wrong on carried state).
	special, past bool
	index         int
	rel           float64
	misaligned    bool
	later         bool
}

// wrote is a fault in the slice argument arg; returned, in the result ret.
func wrote(field string, arg int, want string) fault {
	return fault{field: field, arg: arg, ret: -1, want: want}
}

func returned(field string, ret int, want string) fault {
	return fault{field: field, arg: -1, ret: ret, want: want}
}

// faults lists, for every kernel the check runs, each output the check
// should compare: every stream a kernel writes, every sum it returns.
var faults = []fault{
	wrote("SGD", 1, ": p: element"),
	wrote("Momentum", 1, ": p: element"), wrote("Momentum", 3, ": buf: element"),
	wrote("Adam", 1, ": p: element"), wrote("Adam", 3, ": m: element"), wrote("Adam", 4, ": v: element"),
	wrote("Adam", 5, ": vmax: element"),
	wrote("AdamFast", 1, ": p["), wrote("AdamFast", 3, ": m: element"), wrote("AdamFast", 4, ": v: element"),
	wrote("AdamFast", 2, ": g: element"),
	wrote("Lion", 1, ": p: element"), wrote("Lion", 3, ": m: element"),
	wrote("Adagrad", 1, ": p: element"), wrote("Adagrad", 3, ": sum: element"),
	wrote("RMSprop", 1, ": p: element"), wrote("RMSprop", 3, ": square_avg: element"),
	wrote("RMSprop", 4, ": momentum_buffer: element"), wrote("RMSprop", 5, ": grad_avg: element"),
	wrote("NAdam", 1, ": p: element"), wrote("NAdam", 3, ": exp_avg: element"), wrote("NAdam", 4, ": exp_avg_sq: element"),
	wrote("RAdam", 1, ": p: element"), wrote("RAdam", 3, ": exp_avg: element"), wrote("RAdam", 4, ": exp_avg_sq: element"),
	wrote("Adamax", 1, ": p: element"), wrote("Adamax", 3, ": exp_avg: element"), wrote("Adamax", 4, ": exp_inf: element"),
	wrote("Adadelta", 1, ": p: element"), wrote("Adadelta", 3, ": square_avg: element"),
	wrote("Adadelta", 4, ": acc_delta: element"),
	wrote("LAMBMoments", 3, ": exp_avg: element"), wrote("LAMBMoments", 4, ": exp_avg_sq: element"),
	returned("LAMBMoments", 0, "Σp² = "), returned("LAMBMoments", 1, "Σr² = "),
	wrote("LAMBApply", 1, ": p: element"), wrote("LAMBApplyStored", 1, ": p: element"),
	wrote("LAMBMomentsTo", 3, ": exp_avg: element"), wrote("LAMBMomentsTo", 4, ": exp_avg_sq: element"),
	wrote("LAMBMomentsTo", 5, ": r: element"),
	returned("LAMBMomentsTo", 0, "Σp² = "), returned("LAMBMomentsTo", 1, "Σr² = "),
	wrote("LAMBApplyTo", 1, ": p: element"),
	wrote("SGDKeep", 1, ": p: element"), wrote("SGDKeep", 3, ": p_prev: element"), wrote("SGDKeep", 4, ": g_prev: element"),
	returned("SecantDots", 0, ": SecantDots sy = "), returned("SecantDots", 1, ": SecantDots yy = "),
	returned("SumSquares", 0, ": SumSquares = "),
	returned("SumSquaresCheck", 0, ": SumSquaresCheck = "), returned("SumSquaresCheck", 1, ": non-finite flag"),
	returned("NonFinite", 0, ": non-finite flag"),
	returned("Dot", 0, ": Dot = "),
	wrote("Scale", 0, ": Scale: element"),
	wrote("Roof", 1, ": d0: element"), wrote("Roof", 2, ": d1: element"), wrote("Roof", 3, ": d2: element"),
	wrote("AdafactorVariance", 1, ": variance: element"),
	wrote("AdafactorSums", 3, ": row_var: element"), wrote("AdafactorSums", 4, ": col_var: element"),
	wrote("AdafactorFactor", 1, ": row_var: element"),
	returned("AdafactorMean", 0, ": p: element"),
	wrote("AdafactorScales", 4, ": p: element"), wrote("AdafactorScales", 5, ": p: element"),
	returned("AdafactorNorms", 0, ": p: element"), returned("AdafactorNorms", 1, ": p: element"),
	wrote("AdafactorUpdate", 1, ": p: element"),
	// Wrong on special values only; writes past the end.
	{field: "SGD", arg: 1, ret: -1, want: ": p: element", special: true},
	{field: "Adam", arg: 4, ret: -1, want: ": v: element", special: true},
	{field: "AdamFast", arg: 1, ret: -1, want: ": p: guard element", past: true},
	{field: "Scale", arg: 0, ret: -1, want: ": Scale: guard element", past: true},
	{field: "Roof", arg: 3, ret: -1, want: ": d2: guard element", past: true},
	{field: "LAMBApply", arg: 1, ret: -1, want: ": p: guard element", past: true},
	{field: "LAMBMomentsTo", arg: 5, ret: -1, want: ": r: guard element", past: true},
	{field: "AdafactorUpdate", arg: 1, ret: -1, want: ": p: guard element", past: true},
	// Wrong on a second row of a matrix only.
	{field: "AdafactorSums", arg: 3, ret: -1, want: ": row_var: element 1 of", index: 1},
	// The Fast Adam's p off by 2⁻¹² of its value: beyond the bound on
	// its error.
	{field: "AdamFast", arg: 1, ret: -1, want: ": p[", rel: 0x1p-12},
	// Wrong at misaligned starts only; wrong from the second step on.
	{field: "SGD", arg: 1, ret: -1, want: ": p: element", misaligned: true},
	{field: "Lion", arg: 3, ret: -1, want: ": m: element", misaligned: true},
	{field: "Adam", arg: 1, ret: -1, want: ": p: element", later: true},
}

// change returns x changed grossly: a float scaled and shifted, a flag
// negated.
func change(x reflect.Value) reflect.Value {
	switch x.Kind() {
	case reflect.Float32, reflect.Float64:
		return reflect.ValueOf(x.Float()*1.5 + 1).Convert(x.Type())
	case reflect.Bool:
		return reflect.ValueOf(!x.Bool())
	}
	panic("change: " + x.Type().String())
}

// withFault returns ref with the kernel of f wrong as f says.
func withFault[T kernels.Float](ref Kernels[T], f fault) Kernels[T] {
	bad := ref
	bad.Level = kernels.ISA(9)
	orig := reflect.ValueOf(ref).FieldByName(f.field)
	field := reflect.ValueOf(&bad).Elem().FieldByName(f.field)
	var last unsafe.Pointer // the slice of the call before
	field.Set(reflect.MakeFunc(field.Type(), func(args []reflect.Value) []reflect.Value {
		outs := orig.Call(args)
		if f.arg >= 0 && args[f.arg].Len() > f.index {
			a := args[f.arg]
			at := a.Index(0).Addr().UnsafePointer()
			again := at == last
			last = at
			switch {
			case f.misaligned && uintptr(at)%16 == 0, f.later && !again:
			case f.rel != 0:
				a.Index(0).SetFloat(a.Index(0).Float() * (1 + f.rel))
			case f.past: // the guard element after the slice
				at := unsafe.Add(a.Index(0).Addr().UnsafePointer(), uintptr(a.Len())*a.Type().Elem().Size())
				reflect.NewAt(a.Type().Elem(), at).Elem().SetZero()
			case f.special:
				for i := range a.Len() {
					if x := a.Index(i).Float(); math.IsNaN(x) || math.IsInf(x, 0) {
						a.Index(i).SetZero()
						break
					}
				}
			default:
				a.Index(f.index).Set(change(a.Index(f.index)))
			}
		}
		if f.ret >= 0 {
			outs[f.ret] = change(outs[f.ret])
		}
		return outs
	}))
	return bad
}

// shortParity cuts the check's lengths and offsets to two each for the
// rest of the test: lengths below and across a vector, an aligned and a
// misaligned start are enough for the faults of these tests (each in the
// first elements, the guards, or at misaligned starts), and the full check
// under -race takes half a minute.
func shortParity(t *testing.T) {
	lengths, offsets := parityLengths, parityOffsets
	parityLengths, parityOffsets = []int{7, 33}, []int{0, 1}
	t.Cleanup(func() { parityLengths, parityOffsets = lengths, offsets })
}

// TestCheckCoversEveryOutput: a level whose kernel differs from the
// reference in any one output (a stream it writes, a sum or flag it
// returns) fails the check, and the failure names that output (or, for
// the outputs that only steer p, p); every kernel the check binds is among
// the faults.
func TestCheckCoversEveryOutput(t *testing.T) {
	covered := map[string]bool{}
	for _, f := range faults {
		covered[f.field] = true
	}
	kt := reflect.TypeOf(Kernels[float32]{})
	for i := range kt.NumField() {
		if name := kt.Field(i).Name; kt.Field(i).Type.Kind() == reflect.Func && !covered[name] {
			t.Errorf("no fault of %s", name)
		}
	}
	g, err := kernels.For(kernels.Generic)
	if err != nil {
		t.Fatal(err)
	}
	shortParity(t)
	precs := []string{"f32", "f64"}
	if testing.Short() {
		precs = precs[:1]
	}
	for _, prec := range precs {
		for _, f := range faults {
			name := prec + "/" + f.field + "/" + strings.Trim(f.want, ": [")
			for _, m := range []struct {
				on   bool
				name string
			}{{f.special, "special"}, {f.past, "past"}, {f.index > 0, "index"}, {f.rel != 0, "rel"},
				{f.misaligned, "misaligned"}, {f.later, "later"}} {
				if m.on {
					name += "/" + m.name
				}
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				var res Result
				var err error
				if prec == "f32" {
					res, err = faultRun(Bind[float32](g), f)
				} else {
					res, err = faultRun(Bind[float64](g), f)
				}
				if err != nil {
					t.Fatal(err)
				}
				joined := strings.Join(res.Failures, "\n")
				if res.OK() || !strings.Contains(joined, f.want) {
					t.Errorf("failures (want %q):\n%s", f.want, joined)
				}
			})
		}
	}
}

func faultRun[T kernels.Float](ref Kernels[T], f fault) (Result, error) {
	out := []Result{{Level: "bad"}}
	err := parityT(ref, []Kernels[T]{withFault(ref, f)}, out)
	return out[0], err
}

// TestBind: each kernel of Kernels[T] is the Set's method (or the kernels
// package's function) of its name, for T: a kernel bound in the place of
// another of its signature (AdamFast to Adam) checks nothing, since the
// reference is bound the same way.
func TestBind(t *testing.T) {
	s, err := kernels.For(kernels.Generic)
	if err != nil {
		t.Fatal(err)
	}
	bindNames(t, reflect.ValueOf(Bind[float32](s)), "F32")
	bindNames(t, reflect.ValueOf(Bind[float64](s)), "F64")
}

func bindNames(t *testing.T, k reflect.Value, suffix string) {
	if k.FieldByName("Level").Interface() != kernels.Generic {
		t.Errorf("%s: level %v", suffix, k.FieldByName("Level"))
	}
	for i := range k.NumField() {
		f := k.Field(i)
		if f.Kind() != reflect.Func {
			continue
		}
		name := k.Type().Field(i).Name
		if f.IsNil() {
			t.Errorf("%s%s: nil", name, suffix)
			continue
		}
		fn := runtime.FuncForPC(f.Pointer()).Name()
		if !strings.HasSuffix(fn, ".(*Set)."+name+suffix+"-fm") && !strings.HasSuffix(fn, "/kernels."+name+suffix) {
			t.Errorf("%s%s is bound to %s", name, suffix, fn)
		}
	}
}
