package x86

// queue, when set, collects instructions instead of emitting them, so that
// the unrolled vectors of an iteration can be interleaved: independent work
// sits side by side in the scheduler instead of one long dependency chain
// after another.
var queue *[]func()

// Do emits the instructions of f now, or queues them inside Interleaved.
// The instructions of ISA's pickers go through Do.
func Do(f func()) {
	if queue != nil {
		*queue = append(*queue, f)
		return
	}
	f()
}

// Interleaved runs body(j) for j < u, emitting their instructions
// round-robin. Registers are allocated as body runs; only what goes
// through Do is interleaved.
func Interleaved(u int, body func(j int)) {
	qs := make([][]func(), u)
	for j := range qs {
		queue = &qs[j]
		body(j)
	}
	queue = nil
	for step := 0; ; step++ {
		more := false
		for j := range qs {
			if step < len(qs[j]) {
				qs[j][step]()
				more = true
			}
		}
		if !more {
			return
		}
	}
}
