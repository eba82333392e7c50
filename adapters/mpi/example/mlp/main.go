// Command mlp trains the MLP of fuseopt's demo (cmd/fuseopt: a 2 → 32
// (tanh) → 2 (softmax) classifier of the two moons, plain Go forward and
// backward passes, Adam) data-parallel under MPI, each process on its
// share of every batch, with the optimizer step sharded across the
// processes (fusempi.DataParallel). Every process also trains the same
// network alone on the whole batches, and process 0 prints both loss
// curves:
//
//	go build -o mlp ./example/mlp && mpirun -np 2 ./mlp
//
// The curves agree to a tolerance, not bit for bit: a process accumulates
// the float32 gradients of its samples, MPI adds the processes' sums, and
// the one process adds all the samples in one sequence, so the gradients
// differ in their last bits, and training carries the differences on. The
// optimizer step itself adds none (a sharded step is bit-identical to one
// process's on the same gradients). On 2 and 3 processes the losses of
// the 30 epochs differ by at most about 6e-8 of their value (1 process:
// 0); the program exits with status 1 when the largest relative
// difference exceeds -tol, 1e-5 by default.
package main

import (
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"

	fusempi "github.com/fuseopt/fuseopt/adapters/mpi"
	"github.com/fuseopt/fuseopt/optim"
)

func main() {
	epochs := flag.Int("epochs", 30, "passes over the training set")
	hidden := flag.Int("hidden", 32, "hidden units")
	batch := flag.Int("batch", 32, "samples per step, over all processes")
	tol := flag.Float64("tol", 1e-5, "largest relative difference of the two loss curves")
	flag.Parse()
	if err := fusempi.Init(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := 0
	if err := run(*epochs, *hidden, *batch, *tol); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	if err := fusempi.Finalize(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	os.Exit(code)
}

func run(epochs, hidden, batch int, tol float64) error {
	comm, err := fusempi.World()
	if err != nil {
		return err
	}
	rank, size := comm.Rank(), comm.Size()
	r := rand.New(rand.NewPCG(1, 11))
	x, y := moons(r, 512, 0.2)
	adam := optim.DefaultAdam()
	adam.LR = 0.01

	// The data-parallel network: its tensors are pieces of the flat
	// slices of the DataParallel.
	n := 4*hidden + hidden + 2
	dp, err := fusempi.NewDataParallel[float32](comm, adam, optim.Options{}, n)
	if err != nil {
		return err
	}
	defer dp.Close()
	par := &mlp{hidden: hidden, a: make([]float64, hidden)}
	for _, t := range []struct {
		name string
		w, g *[]float32
		dims []int
	}{
		{"fc1.weight", &par.w1, &par.gw1, []int{hidden, 2}}, {"fc1.bias", &par.b1, &par.gb1, []int{hidden}},
		{"fc2.weight", &par.w2, &par.gw2, []int{2, hidden}}, {"fc2.bias", &par.b2, &par.gb2, []int{2}},
	} {
		if *t.w, *t.g, err = dp.Add(t.name, t.dims...); err != nil {
			return err
		}
	}
	// The same network on one process.
	one := newMLP(hidden)
	single, err := optim.New[float32](adam, optim.Options{})
	if err != nil {
		return err
	}
	defer single.Close()
	for _, t := range []struct {
		name string
		w, g []float32
	}{{"fc1.weight", one.w1, one.gw1}, {"fc1.bias", one.b1, one.gb1}, {"fc2.weight", one.w2, one.gw2}, {"fc2.bias", one.b2, one.gb2}} {
		if err := single.Add(t.name, t.w, t.g); err != nil {
			return err
		}
	}
	glorot(rand.New(rand.NewPCG(1, 13)), one)
	copy(par.w1, one.w1)
	copy(par.w2, one.w2)

	idx := make([]int, len(x))
	for i := range idx {
		idx[i] = i
	}
	order := rand.New(rand.NewPCG(1, 12)) // the same batches on every process
	lossDP, _ := par.eval(x, y)
	lossOne := lossDP
	worst := 0.0
	if rank == 0 {
		fmt.Printf("two moons, %d samples, batches of %d over %d processes, Adam lr 0.01\n", len(x), batch, size)
		fmt.Printf("%5s  %14s  %14s  %9s\n", "epoch", fmt.Sprintf("loss (np=%d)", size), "loss (np=1)", "rel diff")
		fmt.Printf("%5d  %14.8f  %14.8f  %9.2e\n", 0, lossDP, lossOne, 0.0)
	}
	for e := 1; e <= epochs; e++ {
		order.Shuffle(len(idx), func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
		for b := 0; b < len(idx); b += batch {
			bt := idx[b:min(b+batch, len(idx))]
			scale := 1 / float64(len(bt)) // the loss is the mean over the whole batch
			dp.Optimizer().ZeroGrad()
			single.ZeroGrad()
			for k, i := range bt {
				if k%size == rank { // this process's share of the batch
					p := par.forward(x[i])
					par.backward(x[i], y[i], p, scale)
				}
				p := one.forward(x[i])
				one.backward(x[i], y[i], p, scale)
			}
			if _, err := dp.Step(); err != nil {
				return err
			}
			if _, err := single.Step(); err != nil {
				return err
			}
		}
		lossDP, _ = par.eval(x, y)
		lossOne, _ = one.eval(x, y)
		d := math.Abs(lossDP-lossOne) / lossOne
		worst = max(worst, d)
		if rank == 0 && (e%5 == 0 || e == epochs) {
			fmt.Printf("%5d  %14.8f  %14.8f  %9.2e\n", e, lossDP, lossOne, d)
		}
	}
	_, acc := par.eval(x, y)
	mine := dp.Optimizer().StateBytes()
	if rank == 0 {
		fmt.Printf("largest relative difference %.2e (tolerance %.0e); accuracy %.3f; state bytes on process 0: %d of %d\n",
			worst, tol, acc, mine, single.StateBytes())
	}
	if worst > tol {
		return fmt.Errorf("rank %d: the loss curves differ by %.2e, more than %.0e", rank, worst, tol)
	}
	return nil
}

// moons returns n points of the two interleaving half circles with
// Gaussian noise, and their classes (cmd/fuseopt's).
func moons(r *rand.Rand, n int, noise float64) (x [][2]float64, y []int) {
	x = make([][2]float64, n)
	y = make([]int, n)
	for i := range n {
		t := math.Pi * r.Float64()
		c := i % 2
		if c == 0 {
			x[i] = [2]float64{math.Cos(t), math.Sin(t)}
		} else {
			x[i] = [2]float64{1 - math.Cos(t), 0.5 - math.Sin(t)}
		}
		x[i][0] += noise*r.NormFloat64() - 0.5
		x[i][1] += noise*r.NormFloat64() - 0.25
		y[i] = c
	}
	return x, y
}

// mlp is the network and its gradients (cmd/fuseopt's).
type mlp struct {
	hidden             int
	w1, b1, w2, b2     []float32 // w1[h*2+j], w2[k*hidden+h]
	gw1, gb1, gw2, gb2 []float32
	a                  []float64 // hidden activations of the current sample
}

func newMLP(hidden int) *mlp {
	return &mlp{hidden: hidden,
		w1: make([]float32, 2*hidden), b1: make([]float32, hidden),
		w2: make([]float32, 2*hidden), b2: make([]float32, 2),
		gw1: make([]float32, 2*hidden), gb1: make([]float32, hidden),
		gw2: make([]float32, 2*hidden), gb2: make([]float32, 2),
		a: make([]float64, hidden)}
}

// glorot sets Glorot-uniform weights and zero biases.
func glorot(r *rand.Rand, m *mlp) {
	l := math.Sqrt(6.0 / float64(2+m.hidden))
	for i := range m.w1 {
		m.w1[i] = float32(l * (2*r.Float64() - 1))
	}
	for i := range m.w2 {
		m.w2[i] = float32(l * (2*r.Float64() - 1))
	}
}

func (m *mlp) forward(x [2]float64) (p [2]float64) {
	var z [2]float64
	for k := range 2 {
		z[k] = float64(m.b2[k])
	}
	for h := range m.hidden {
		s := float64(m.b1[h]) + float64(m.w1[2*h])*x[0] + float64(m.w1[2*h+1])*x[1]
		a := math.Tanh(s)
		m.a[h] = a
		z[0] += float64(m.w2[h]) * a
		z[1] += float64(m.w2[m.hidden+h]) * a
	}
	mx := math.Max(z[0], z[1])
	e0, e1 := math.Exp(z[0]-mx), math.Exp(z[1]-mx)
	return [2]float64{e0 / (e0 + e1), e1 / (e0 + e1)}
}

// backward adds scale times the gradient of the cross-entropy of sample
// (x, y), whose forward pass was the last one, into the gradients.
func (m *mlp) backward(x [2]float64, y int, p [2]float64, scale float64) {
	dz := [2]float64{p[0] * scale, p[1] * scale}
	dz[y] -= scale
	m.gb2[0] += float32(dz[0])
	m.gb2[1] += float32(dz[1])
	for h := range m.hidden {
		a := m.a[h]
		m.gw2[h] += float32(dz[0] * a)
		m.gw2[m.hidden+h] += float32(dz[1] * a)
		da := dz[0]*float64(m.w2[h]) + dz[1]*float64(m.w2[m.hidden+h])
		ds := da * (1 - a*a)
		m.gb1[h] += float32(ds)
		m.gw1[2*h] += float32(ds * x[0])
		m.gw1[2*h+1] += float32(ds * x[1])
	}
}

func (m *mlp) eval(x [][2]float64, y []int) (loss, acc float64) {
	right := 0
	for i := range x {
		p := m.forward(x[i])
		loss -= math.Log(math.Max(p[y[i]], 1e-300))
		if (p[1] > p[0]) == (y[i] == 1) {
			right++
		}
	}
	return loss / float64(len(x)), float64(right) / float64(len(x))
}
