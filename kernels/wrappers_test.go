package kernels

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"go/types"
	"maps"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
)

// The package-level kernel functions (api.go, adafactor.go) forward to the
// method of the same name of the active set: `return active.X(a, b, …)`
// (or `active.X(a, b, …)` for a function without results). Most are
// called by no test, so a wrapper that swapped two arguments, or called
// another kernel of the same signature, would pass every other test.
// TestWrappersForward reads the package's source and holds each to the
// form, and each exported method of *Set to having such a wrapper.

// setMethodsWithoutWrapper are the exported methods of *Set that have no
// package-level wrapper forwarding to them, and why.
var setMethodsWithoutWrapper = map[string]string{
	"Level":       "the function Level returns active.level (see notWrappers)",
	"FastIsExact": "a property of a set; Active().FastIsExact() for the active one",
	"FastPathF32": "a property of a set",
	"FastPathF64": "a property of a set",
	"KernelLevel": "a property of a set",
	"BF16Nearest": "a property of a set",
	"Issued":      "a property of a set (the active one is issued)",
	"RoofF32":     "a benchmark's memory roof, not a kernel users call",
	"RoofF64":     "a benchmark's memory roof, not a kernel users call",
}

// notWrappers are the exported package-level functions that have the name
// of a method of *Set or call one on active without being its wrapper.
var notWrappers = map[string]string{
	"Describe": "asks the active set which level runs each kernel",
	"Level":    "returns active.level, the level chosen at start-up",
}

type wrapperSource struct {
	fset    *token.FileSet
	funcs   map[string]*ast.FuncDecl // exported package-level functions
	methods map[string]*ast.FuncDecl // exported methods of *Set
}

// parseWrapperSource parses the package's non-test files in dir (every
// build's: the wrappers and methods are the same in all).
func parseWrapperSource(dir string) (*wrapperSource, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	src := &wrapperSource{fset: token.NewFileSet(), funcs: map[string]*ast.FuncDecl{}, methods: map[string]*ast.FuncDecl{}}
	for _, e := range ents {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(src.fset, dir+"/"+name, nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		if f.Name.Name != "kernels" {
			continue
		}
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || !fd.Name.IsExported() {
				continue
			}
			if fd.Recv == nil {
				src.funcs[fd.Name.Name] = fd // per-build variants (SVE) have one form
				continue
			}
			if st, ok := fd.Recv.List[0].Type.(*ast.StarExpr); ok {
				if id, ok := st.X.(*ast.Ident); ok && id.Name == "Set" {
					src.methods[fd.Name.Name] = fd
				}
			}
		}
	}
	return src, nil
}

// fieldTypes returns the types of a field list, one per name, as source
// text.
func fieldTypes(fl *ast.FieldList) []string {
	var out []string
	if fl == nil {
		return out
	}
	for _, f := range fl.List {
		n := max(len(f.Names), 1)
		for range n {
			out = append(out, types.ExprString(f.Type))
		}
	}
	return out
}

// paramNames returns the parameters' names in order ("" for an unnamed
// one).
func paramNames(fl *ast.FieldList) []string {
	var out []string
	for _, f := range fl.List {
		if len(f.Names) == 0 {
			out = append(out, "")
		}
		for _, n := range f.Names {
			out = append(out, n.Name)
		}
	}
	return out
}

// activeCall returns the method that call calls on active, if it is such
// a call.
func activeCall(e ast.Expr) (*ast.CallExpr, string) {
	call, ok := e.(*ast.CallExpr)
	if !ok {
		return nil, ""
	}
	sel, ok := call.Fun.(*ast.SelectorExpr)
	if !ok {
		return nil, ""
	}
	if id, ok := sel.X.(*ast.Ident); !ok || id.Name != "active" {
		return nil, ""
	}
	return call, sel.Sel.Name
}

// checkWrapper returns what is wrong with fn as the wrapper of method m:
// the same parameter and result types, and a body that is the one call
// active.<its name>(its parameters, in order), returned if it has results.
func checkWrapper(fn, m *ast.FuncDecl) []string {
	name := fn.Name.Name
	var errs []string
	if m == nil {
		return []string{name + ": *Set has no method " + name}
	}
	if a, b := fieldTypes(fn.Type.Params), fieldTypes(m.Type.Params); !slices.Equal(a, b) {
		errs = append(errs, fmt.Sprintf("%s: parameter types %v, the method's %v", name, a, b))
	}
	if a, b := fieldTypes(fn.Type.Results), fieldTypes(m.Type.Results); !slices.Equal(a, b) {
		errs = append(errs, fmt.Sprintf("%s: result types %v, the method's %v", name, a, b))
	}
	if a, b := paramNames(fn.Type.Params), paramNames(m.Type.Params); !slices.Equal(a, b) {
		errs = append(errs, fmt.Sprintf("%s: parameters named %v, the method's %v", name, a, b))
	}
	if fn.Type.TypeParams != nil {
		errs = append(errs, name+": type parameters")
	}
	if fn.Body == nil || len(fn.Body.List) != 1 {
		return append(errs, name+": body is not one statement")
	}
	var e ast.Expr
	switch st := fn.Body.List[0].(type) {
	case *ast.ReturnStmt:
		if len(st.Results) == 1 {
			e = st.Results[0]
		}
		if fn.Type.Results == nil || len(fn.Type.Results.List) == 0 {
			errs = append(errs, name+": returns but has no results")
		}
	case *ast.ExprStmt:
		e = st.X
		if fn.Type.Results != nil && len(fn.Type.Results.List) > 0 {
			errs = append(errs, name+": has results but does not return the call's")
		}
	}
	call, called := activeCall(e)
	if call == nil {
		return append(errs, name+": body is not a call of a method of active")
	}
	if called != name {
		errs = append(errs, fmt.Sprintf("%s: calls active.%s", name, called))
	}
	if call.Ellipsis.IsValid() {
		errs = append(errs, name+": call with ...")
	}
	var args []string
	for _, a := range call.Args {
		args = append(args, types.ExprString(a))
	}
	if want := paramNames(fn.Type.Params); !slices.Equal(args, want) {
		errs = append(errs, fmt.Sprintf("%s: calls active.%s(%s), want its parameters in order (%s)",
			name, called, strings.Join(args, ", "), strings.Join(want, ", ")))
	}
	return errs
}

// checkWrappers returns what is wrong with the wrappers of src: every
// exported package-level function that has the name of an exported
// method of *Set or calls one on active is that method's wrapper (except
// notWrappers), and every exported method of *Set has one (except
// setMethodsWithoutWrapper). It also returns the number of wrappers
// checked.
func checkWrappers(src *wrapperSource) ([]string, int) {
	var errs []string
	checked := 0
	var names []string
	for name := range src.funcs {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fn := src.funcs[name]
		if _, ok := notWrappers[name]; ok {
			continue
		}
		callsActive := false
		ast.Inspect(fn.Body, func(n ast.Node) bool {
			if e, ok := n.(ast.Expr); ok {
				if _, m := activeCall(e); m != "" && ast.IsExported(m) {
					callsActive = true
				}
			}
			return true
		})
		if _, isMethod := src.methods[name]; !isMethod && !callsActive {
			continue // not a wrapper (AdafactorFactorF32, SRKey, …)
		}
		errs = append(errs, checkWrapper(fn, src.methods[name])...)
		checked++
	}
	var mnames []string
	for name := range src.methods {
		mnames = append(mnames, name)
	}
	sort.Strings(mnames)
	for _, name := range mnames {
		_, excepted := setMethodsWithoutWrapper[name]
		if _, ok := src.funcs[name]; !ok && !excepted {
			errs = append(errs, fmt.Sprintf("Set.%s has no package-level wrapper (add one, or it to setMethodsWithoutWrapper)", name))
		}
	}
	for name := range setMethodsWithoutWrapper {
		if _, ok := src.methods[name]; !ok {
			errs = append(errs, fmt.Sprintf("setMethodsWithoutWrapper names %s, which is no method of *Set", name))
		}
	}
	return errs, checked
}

func TestWrappersForward(t *testing.T) {
	src, err := parseWrapperSource(".")
	if err != nil {
		t.Fatal(err)
	}
	errs, checked := checkWrappers(src)
	for _, e := range errs {
		t.Error(e)
	}
	// Every exported method of *Set is a wrapper's or an exception:
	// together they are all the methods.
	if want := len(src.methods) - len(setMethodsWithoutWrapper); checked != want {
		t.Errorf("checked %d wrappers, want %d (the methods of *Set less the exceptions)", checked, want)
	}
	t.Logf("%d wrappers forward to the method of their name, with their parameters in order", checked)
}

// TestWrappersForwardCatches: the check finds a wrapper that swaps two
// arguments, one that calls another method, one that does something
// besides, and a method without a wrapper.
func TestWrappersForwardCatches(t *testing.T) {
	src, err := parseWrapperSource(".")
	if err != nil {
		t.Fatal(err)
	}
	parseFunc := func(s string) *ast.FuncDecl {
		f, err := parser.ParseFile(token.NewFileSet(), "x.go", "package kernels\n"+s, 0)
		if err != nil {
			t.Fatal(err)
		}
		return f.Decls[0].(*ast.FuncDecl)
	}
	for _, c := range []struct{ src, want string }{
		{"func NAdamF32(c *Coeffs, p, grad, m, v []float32) error { return active.NAdamF32(c, p, grad, v, m) }", "want its parameters in order"},
		{"func NAdamF32(c *Coeffs, p, grad, m, v []float32) error { return active.RAdamF32(c, p, grad, m, v) }", "calls active.RAdamF32"},
		{"func NAdamF32(c *Coeffs, p, grad, v, m []float32) error { return active.NAdamF32(c, p, grad, v, m) }", "parameters named"},
		{"func NAdamF32(c *Coeffs, p, grad, m, v []float32) error { _ = 1; return active.NAdamF32(c, p, grad, m, v) }", "not one statement"},
		{"func NAdamF32(c *Coeffs, p, grad, m, v []float32) error { return sets[Generic].NAdamF32(c, p, grad, m, v) }", "not a call of a method of active"},
		{"func ScaleF32(x []float32, a float32) { active.ScaleF32(x, -a) }", "want its parameters in order"},
		{"func ScaleF32(x []float32, a float64) { active.ScaleF32(x, float32(a)) }", "parameter types"},
	} {
		mut := &wrapperSource{fset: src.fset, funcs: maps.Clone(src.funcs), methods: src.methods}
		fn := parseFunc(c.src)
		mut.funcs[fn.Name.Name] = fn
		errs, _ := checkWrappers(mut)
		if !slices.ContainsFunc(errs, func(e string) bool { return strings.Contains(e, c.want) }) {
			t.Errorf("%s: errors %q, want one with %q", c.src, errs, c.want)
		}
	}
	mut := &wrapperSource{fset: src.fset, funcs: maps.Clone(src.funcs), methods: src.methods}
	delete(mut.funcs, "LionF64")
	if errs, _ := checkWrappers(mut); !slices.ContainsFunc(errs, func(e string) bool { return strings.Contains(e, "Set.LionF64 has no package-level wrapper") }) {
		t.Errorf("without LionF64: errors %q", errs)
	}
}
