// Package nilptr tells an interface value that holds a nil pointer (or
// another nil reference) from a usable one: the interface itself is then
// not nil, and calling its methods dereferences nil.
package nilptr

import "reflect"

// Is reports whether x is nil or holds a nil pointer, map, slice,
// function or channel (the value in an interface is never itself an
// interface).
func Is(x any) bool {
	if x == nil {
		return true
	}
	switch v := reflect.ValueOf(x); v.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Func, reflect.Chan, reflect.UnsafePointer:
		return v.IsNil()
	}
	return false
}
