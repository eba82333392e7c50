package kernels

import (
	"fmt"
	"slices"

	"github.com/klauspost/cpuid/v2"
)

// Level choice per kernel. Every level computes the same bits, so a kernel
// may run at a lower level than the rest of the set wherever that level is
// faster on the CPU at hand: AVX-512's wider vectors do not help a kernel
// bound by the divider, and on some cores they lower the clock. Which
// kernel runs at which level is a table keyed by CPU model, filled from
// measurements (each entry says where its figures come from), and never
// decided by timing at run time. The table applies to the set chosen at
// start-up (Active) when it is the best level the CPU runs; For(l) and a
// level chosen with FUSEOPT_CPU are always one level throughout, so that
// the parity tests compare whole levels.

// KernelChoice is one entry of the table: on CPUs of vendor, family and
// model, the kernel (its name, as KernelLevel takes it) of element size
// Size bytes runs at Level.
type KernelChoice struct {
	Vendor string // cpuid vendor name, as Describe reports it ("Intel", "AMD")
	Family int
	Models []int // the models of the family it applies to
	Kernel string
	Size   int // 4 (float32) or 8 (float64)
	Level  ISA
	Why    string // the measurement, and whether it was made here or carried over
}

// kernelChoices is the table.
var kernelChoices = []KernelChoice{
	// Intel Xeon with AVX512-FP16, BF16 and AMX (Sapphire Rapids 0x8F and
	// Emerald Rapids 0xCF class), 2-vCPU VM: exact Adam float32 in cache
	// (64K parameters, one goroutine) ran at 2,631 Mparam/s on AVX-512 and
	// 2,781 on AVX2 (the divider sets the pace; AVX-512 lowers the clock).
	// Carried over from the measurements of issue 14 (contenders
	// alternated, medians of 6–7 rounds); not measured on this project's
	// AMD machine, where AVX-512 is faster.
	{Vendor: "Intel", Family: 6, Models: []int{0x8F, 0xCF}, Kernel: "adam", Size: 4, Level: AVX2,
		Why: "Intel Xeon SPR/EMR class: exact Adam f32 in cache 2,781 vs 2,631 Mparam/s (AVX2 vs AVX-512), carried over"},
}

// KernelChoices returns the table's entries that apply to this CPU, in
// table order (for Describe and the tour).
func KernelChoices() []KernelChoice {
	c := &cpuid.CPU
	return choicesFor(c.VendorID.String(), c.Family, c.Model)
}

func choicesFor(vendor string, family, model int) []KernelChoice {
	var out []KernelChoice
	for _, k := range kernelChoices {
		if k.Vendor != vendor || k.Family != family {
			continue
		}
		for _, m := range k.Models {
			if m == model {
				out = append(out, k)
				break
			}
		}
	}
	return out
}

// withChoices returns base with the kernels of choices taken from the sets
// of their levels (sets[level]), or base itself when no choice applies or a
// choice names a level this build or CPU does not run (then that choice is
// skipped). The result is a new Set; base is not changed.
func withChoices(base *Set, all []*Set, choices []KernelChoice) *Set {
	var s *Set
	for _, k := range choices {
		if int(k.Level) >= len(all) || all[k.Level] == nil || !k.Level.Supported() || k.Level == base.level {
			continue
		}
		if s == nil {
			c := *base
			s = &c
		}
		from := all[k.Level]
		if !s.take(from, k.Kernel, k.Size) {
			panic(fmt.Sprintf("kernels: level choice names an unknown kernel %q", k.Kernel))
		}
		s.choices = append(s.choices, kernelAt{k.Kernel, k.Size, k.Level})
	}
	if s == nil {
		return base
	}
	return s
}

// applied returns the entries of table that s took: an entry that names
// s's own level (a CPU whose best level the OS or FUSEOPT_CPU lowered to
// the entry's) moved nothing and is left out.
func applied(s *Set, table []KernelChoice) []KernelChoice {
	var out []KernelChoice
	for _, k := range table {
		if slices.Contains(s.k().choices, kernelAt{k.Kernel, k.Size, k.Level}) {
			out = append(out, k)
		}
	}
	return out
}

// kernelAt records that a set runs one kernel at another level.
type kernelAt struct {
	kernel string
	size   int
	level  ISA
}

// take replaces the named kernel of element size size with from's, and
// reports whether the name is known.
func (s *Set) take(from *Set, kernel string, size int) bool {
	if size == 4 {
		return takeKernel(&s.f32, &from.f32, kernel)
	}
	return takeKernel(&s.f64, &from.f64, kernel)
}

func takeKernel[T Float](dst, src *table[T], kernel string) bool {
	switch kernel {
	case "sgd":
		dst.sgd = src.sgd
	case "momentum":
		dst.momentum = src.momentum
	case "adam":
		dst.adam = src.adam
	case "adamFast":
		dst.adamFast, dst.adamFastSplits = src.adamFast, src.adamFastSplits
		dst.fastK, dst.fastWhy = src.fastK, src.fastWhy
	case "lion":
		dst.lion = src.lion
	case "adagrad":
		dst.adagrad = src.adagrad
	case "rmsprop":
		dst.rmsprop = src.rmsprop
	case "adamax":
		dst.adamax = src.adamax
	case "adadelta":
		dst.adadelta = src.adadelta
	case "nadam":
		dst.nadam = src.nadam
	case "radam":
		dst.radam = src.radam
	default:
		return false
	}
	return true
}

// KernelLevel returns the level at which s runs the named kernel (sgd,
// momentum, adam, adamFast, lion, adagrad, rmsprop, adamax, adadelta,
// nadam, radam) of element size size (4 or 8): the set's level, unless the
// table of level choices moved it.
func (s *Set) KernelLevel(kernel string, size int) ISA {
	for _, k := range s.k().choices {
		if k.kernel == kernel && k.size == size {
			return k.level
		}
	}
	return s.k().level
}
