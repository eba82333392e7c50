package abi

import (
	"go/ast"
	"go/parser"
	"go/token"
	"slices"
	"testing"
)

// TestRowSyms checks that RowSyms names each row by its constant: the
// generated reference refers to the rows by these names.
func TestRowSyms(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "abi.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	index := map[string]int{}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		iota := -1
		for i, spec := range g.Specs {
			vs := spec.(*ast.ValueSpec)
			if i == 0 {
				if len(vs.Values) != 1 || vs.Names[0].Name != "RowGS" {
					break
				}
				iota = 0
			}
			if len(vs.Values) > 0 && i > 0 {
				break // the rows end where an explicit value starts
			}
			index[vs.Names[0].Name] = iota
			iota++
		}
	}
	if index["NumRows"] != NumRows {
		t.Fatalf("parsed NumRows = %d, want %d", index["NumRows"], NumRows)
	}
	for r, sym := range RowSyms {
		if i, ok := index[sym]; !ok || i != r {
			t.Errorf("RowSyms[%d] = %q, which is row %d (found %v)", r, sym, i, ok)
		}
		if RowNames[r] == "" {
			t.Errorf("row %d has no name", r)
		}
	}
}

// TestDescriptions lowers every variant of every described kernel and
// checks what the generators rely on: each condition is tested, each
// stream is used, a stream used only under a condition is used only there,
// and each variant stores p.
func TestDescriptions(t *testing.T) {
	for _, k := range Elementwise {
		used := map[*Cond]bool{}
		var walk func(ss []Stmt)
		walk = func(ss []Stmt) {
			for _, s := range ss {
				if s.Kind == StmtIf {
					used[s.Cond] = true
					walk(s.Then)
					walk(s.Else)
				}
			}
		}
		walk(k.Body)
		for _, c := range k.Conds {
			if !used[c] {
				t.Errorf("%s: condition %s is never tested", k.Name, c.Name)
			}
		}
		if k.Unroll.AVX2 < 1 || k.Unroll.AVX512 < 1 {
			t.Errorf("%s: unroll %v", k.Name, k.Unroll)
		}
		streamUsed := make([]bool, len(k.Streams))
		for _, v := range k.Variants() {
			for _, m := range v.Modes {
				if k.Canon(m) != v.Mode || k.Canon(m|^k.Mask()) != v.Mode {
					t.Errorf("%s: Canon(%d) = %d, want %d", k.Name, m, k.Canon(m), v.Mode)
				}
			}
			storesP := false
			for _, x := range k.Lower(v.Mode) {
				if x.Op == OpLoad || x.Op == OpStore {
					streamUsed[x.Stream] = true
					if c := k.Streams[x.Stream].Only; c != nil && !c.Holds(v.Mode) {
						t.Errorf("%s mode %d: stream %s used where %s does not hold", k.Name, v.Mode, k.Streams[x.Stream].Name, c.Name)
					}
				}
				storesP = storesP || x.Op == OpStore && x.Stream == 0
			}
			if !storesP && len(k.Sums) == 0 {
				t.Errorf("%s mode %d: p is not stored", k.Name, v.Mode)
			}
		}
		for i, u := range streamUsed {
			if !u {
				t.Errorf("%s: stream %s is never used", k.Name, k.Streams[i].Name)
			}
		}
	}
}

// TestGridDescriptions checks the grid kernels as TestDescriptions checks
// the element-wise ones, and what the generators of grid kernels rely on:
// values the same for a whole row (rows, arguments, loads of row streams)
// never die, every sum is accumulated in every variant, and the float64
// streams are only reduced into.
func TestGridDescriptions(t *testing.T) {
	for _, k := range Grids {
		if !k.Grid {
			t.Errorf("%s: not a grid kernel", k.Name)
		}
		streamUsed := make([]bool, len(k.Streams))
		for _, v := range k.Variants() {
			vals := k.Lower(v.Mode)
			summed := map[int]bool{}
			for _, x := range vals {
				switch x.Op {
				case OpLoad, OpStore, OpRowSumSq, OpColSumSq:
					streamUsed[x.Stream] = true
					st := k.Streams[x.Stream]
					if c := st.Only; c != nil && !c.Holds(v.Mode) {
						t.Errorf("%s mode %d: stream %s used where %s does not hold", k.Name, v.Mode, st.Name, c.Name)
					}
					if st.F64 != (x.Op == OpRowSumSq || x.Op == OpColSumSq) {
						t.Errorf("%s mode %d: %v on stream %s (float64 %v)", k.Name, v.Mode, x.Op, st.Name, st.F64)
					}
					if x.Op == OpStore && st.Kind != StreamFull {
						t.Errorf("%s mode %d: store into stream %s, not a full stream", k.Name, v.Mode, st.Name)
					}
				case OpSumSq:
					summed[x.Sum] = true
				}
				for j, a := range x.Args {
					if x.Dies[j] && k.Fixed(vals[a]) {
						t.Errorf("%s mode %d: %v dies", k.Name, v.Mode, vals[a].Op)
					}
				}
			}
			if len(summed) != len(k.Sums) {
				t.Errorf("%s mode %d: sums %v accumulated, of %v", k.Name, v.Mode, summed, k.Sums)
			}
		}
		for i, u := range streamUsed {
			if !u {
				t.Errorf("%s: stream %s is never used", k.Name, k.Streams[i].Name)
			}
		}
	}
}

// TestGridLowerErrors: a sum, an argument or a reduction stream that the
// kernel does not have stops the lowering.
func TestGridLowerErrors(t *testing.T) {
	for name, body := range map[string][]Stmt{
		"sum":      {SumSq("nope", Load("x"))},
		"arg":      {Set("y", Arg("nope")), SumSq("s", Var("y"))},
		"row sum":  {RowSumSq("x", Load("x"))},
		"col sum":  {ColSumSq("r", Load("x"))},
		"col kind": {ColSumSq("c32", Load("x"))},
	} {
		k := &Kernel{Name: name, Grid: true, Sums: []string{"s"},
			Streams: []Stream{{Name: "x"}, {Name: "r", Kind: StreamRow, F64: true}, {Name: "c32", Kind: StreamCol}},
			Body:    body}
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: lowered", name)
				}
			}()
			k.Lower(0)
		}()
	}
}

// TestSumsAndArgs checks the lowering of sums and arguments: every sum is
// added once per variant, after the values it squares, and an argument is
// one value that never dies (the generators keep it in a register), in
// the element-wise and the grid kernels.
func TestSumsAndArgs(t *testing.T) {
	for _, k := range append(slices.Clip(Elementwise), Grids...) {
		for _, v := range k.Variants() {
			vals := k.Lower(v.Mode)
			seen := make([]int, len(k.Sums))
			for i, x := range vals {
				switch x.Op {
				case OpSumSq:
					seen[x.Sum]++
					if x.Args[0] >= i {
						t.Errorf("%s mode %d: sum %s of a later value", k.Name, v.Mode, k.Sums[x.Sum])
					}
				case OpArg:
					if x.Arg >= len(k.Args) {
						t.Errorf("%s mode %d: argument %d of %d", k.Name, v.Mode, x.Arg, len(k.Args))
					}
				}
				for j, a := range x.Args {
					if vals[a].Op == OpArg && x.Dies[j] {
						t.Errorf("%s mode %d: argument dies at value %d", k.Name, v.Mode, i)
					}
				}
			}
			for s, n := range seen {
				if n != 1 {
					t.Errorf("%s mode %d: sum %s added %d times", k.Name, v.Mode, k.Sums[s], n)
				}
			}
		}
	}
}
