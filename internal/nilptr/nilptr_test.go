package nilptr

import (
	"io"
	"strings"
	"testing"
	"unsafe"
)

func TestIs(t *testing.T) {
	var r io.Reader
	var sr *strings.Reader
	var m map[int]int
	var f func()
	var ch chan int
	var up unsafe.Pointer
	x := 1
	for _, c := range []struct {
		x    any
		want bool
	}{
		{nil, true}, {r, true}, {sr, true}, {io.Reader(sr), true}, {m, true}, {[]int(nil), true},
		{f, true}, {ch, true}, {up, true},
		{strings.NewReader("x"), false}, {3, false}, {"", false}, {[]int{}, false}, {map[int]int{}, false},
		{func() {}, false}, {make(chan int), false}, {unsafe.Pointer(&x), false}, {struct{ p *int }{}, false},
	} {
		if got := Is(c.x); got != c.want {
			t.Errorf("Is(%#v) = %v, want %v", c.x, got, c.want)
		}
	}
}
