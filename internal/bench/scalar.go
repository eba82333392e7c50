package bench

import "math"

// The plain scalar loops of a Go ML stack: one optimizer step written as a
// Go program writes it today (as gorgonia's and spago's solvers do), with
// PyTorch's semantics, in the parameters' own precision. The bias
// corrections are computed once per step outside the loop, and the slices
// are re-sliced to len(p) so that the compiler drops the bounds checks: the
// loops get their best chance.

func pow(b float64, t int) float64 { return math.Pow(b, float64(t)) }

func sgdScalarF32(p, g []float32, lr float32) {
	g = g[:len(p)]
	for i := range p {
		p[i] -= lr * g[i]
	}
}

func sgdScalarF64(p, g []float64, lr float64) {
	g = g[:len(p)]
	for i := range p {
		p[i] -= lr * g[i]
	}
}

// momentumScalarF32 is torch.optim.SGD with momentum (dampening 0) after
// its first step: buf = μ·buf + g; p -= lr·buf (Nesterov: p -= lr·(g + μ·buf)).
func momentumScalarF32(p, g, buf []float32, lr, mu float32, nesterov bool) {
	g, buf = g[:len(p)], buf[:len(p)]
	if nesterov {
		for i := range p {
			buf[i] = mu*buf[i] + g[i]
			p[i] -= lr * (g[i] + mu*buf[i])
		}
		return
	}
	for i := range p {
		buf[i] = mu*buf[i] + g[i]
		p[i] -= lr * buf[i]
	}
}

func momentumScalarF64(p, g, buf []float64, lr, mu float64, nesterov bool) {
	g, buf = g[:len(p)], buf[:len(p)]
	if nesterov {
		for i := range p {
			buf[i] = mu*buf[i] + g[i]
			p[i] -= lr * (g[i] + mu*buf[i])
		}
		return
	}
	for i := range p {
		buf[i] = mu*buf[i] + g[i]
		p[i] -= lr * buf[i]
	}
}

// adamScalarF32 is one Adam step (wd = 0) or AdamW step (wd > 0, decoupled):
//
//	p *= 1 - lr·wd                       (AdamW)
//	m = β1·m + (1-β1)·g
//	v = β2·v + (1-β2)·g²
//	p -= lr · (m/bc1) / (sqrt(v/bc2) + eps)
func adamScalarF32(p, g, m, v []float32, lr, b1, b2, eps, wd, bc1, bc2 float32) {
	g, m, v = g[:len(p)], m[:len(p)], v[:len(p)]
	decay := 1 - lr*wd
	for i := range p {
		if wd != 0 {
			p[i] *= decay
		}
		m[i] = b1*m[i] + (1-b1)*g[i]
		v[i] = b2*v[i] + (1-b2)*g[i]*g[i]
		mhat := m[i] / bc1
		vhat := v[i] / bc2
		p[i] -= lr * mhat / (float32(math.Sqrt(float64(vhat))) + eps)
	}
}

func adamScalarF64(p, g, m, v []float64, lr, b1, b2, eps, wd, bc1, bc2 float64) {
	g, m, v = g[:len(p)], m[:len(p)], v[:len(p)]
	decay := 1 - lr*wd
	for i := range p {
		if wd != 0 {
			p[i] *= decay
		}
		m[i] = b1*m[i] + (1-b1)*g[i]
		v[i] = b2*v[i] + (1-b2)*g[i]*g[i]
		mhat := m[i] / bc1
		vhat := v[i] / bc2
		p[i] -= lr * mhat / (math.Sqrt(vhat) + eps)
	}
}

// lionScalarF32 is one Lion step (Chen et al. 2023) as the paper writes it:
//
//	p *= 1 - lr·wd
//	c = β1·m + (1-β1)·g
//	p -= lr·sign(c)
//	m = β2·m + (1-β2)·g
func lionScalarF32(p, g, m []float32, lr, b1, b2, wd float32) {
	g, m = g[:len(p)], m[:len(p)]
	decay := 1 - lr*wd
	for i := range p {
		p[i] *= decay
		c := b1*m[i] + (1-b1)*g[i]
		switch {
		case c > 0:
			p[i] -= lr
		case c < 0:
			p[i] += lr
		}
		m[i] = b2*m[i] + (1-b2)*g[i]
	}
}

func lionScalarF64(p, g, m []float64, lr, b1, b2, wd float64) {
	g, m = g[:len(p)], m[:len(p)]
	decay := 1 - lr*wd
	for i := range p {
		p[i] *= decay
		c := b1*m[i] + (1-b1)*g[i]
		switch {
		case c > 0:
			p[i] -= lr
		case c < 0:
			p[i] += lr
		}
		m[i] = b2*m[i] + (1-b2)*g[i]
	}
}

// adagradScalarF32 is one torch.optim.Adagrad step (no weight decay or
// learning-rate decay):
//
//	sum += g²
//	p -= lr·g/(sqrt(sum) + eps)
func adagradScalarF32(p, g, sum []float32, lr, eps float32) {
	g, sum = g[:len(p)], sum[:len(p)]
	for i := range p {
		sum[i] += g[i] * g[i]
		p[i] -= lr * g[i] / (float32(math.Sqrt(float64(sum[i]))) + eps)
	}
}

func adagradScalarF64(p, g, sum []float64, lr, eps float64) {
	g, sum = g[:len(p)], sum[:len(p)]
	for i := range p {
		sum[i] += g[i] * g[i]
		p[i] -= lr * g[i] / (math.Sqrt(sum[i]) + eps)
	}
}

// rmspropScalarF32 is one torch.optim.RMSprop step (no weight decay,
// momentum or centering):
//
//	v = α·v + (1-α)·g²
//	p -= lr·g/(sqrt(v) + eps)
func rmspropScalarF32(p, g, v []float32, lr, alpha, eps float32) {
	g, v = g[:len(p)], v[:len(p)]
	for i := range p {
		v[i] = alpha*v[i] + (1-alpha)*g[i]*g[i]
		p[i] -= lr * g[i] / (float32(math.Sqrt(float64(v[i]))) + eps)
	}
}

func rmspropScalarF64(p, g, v []float64, lr, alpha, eps float64) {
	g, v = g[:len(p)], v[:len(p)]
	for i := range p {
		v[i] = alpha*v[i] + (1-alpha)*g[i]*g[i]
		p[i] -= lr * g[i] / (math.Sqrt(v[i]) + eps)
	}
}

// lambScalarF32 is one LAMB step (You et al. 2019, with Adam's bias
// correction, as timm's Lamb computes it) in two loops, as a Go program
// would write it: the moments and the two norms (summed in float64), then
// the update, with r computed again rather than kept in a buffer of its
// own, which would move more memory:
//
//	m = β1·m + (1-β1)·g
//	v = β2·v + (1-β2)·g²
//	r = (m/bc1)/(sqrt(v/bc2) + eps) + wd·p
//	trust = ‖p‖/‖r‖ (1 when either is 0)
//	p -= lr·trust·r
func lambScalarF32(p, g, m, v []float32, lr, b1, b2, eps, wd, bc1, bc2 float32) {
	g, m, v = g[:len(p)], m[:len(p)], v[:len(p)]
	var pp, rr float64
	for i := range p {
		m[i] = b1*m[i] + (1-b1)*g[i]
		v[i] = b2*v[i] + (1-b2)*g[i]*g[i]
		r := (m[i]/bc1)/(float32(math.Sqrt(float64(v[i]/bc2)))+eps) + wd*p[i]
		pp += float64(p[i]) * float64(p[i])
		rr += float64(r) * float64(r)
	}
	trust := float32(1)
	if pp > 0 && rr > 0 {
		trust = float32(math.Sqrt(pp) / math.Sqrt(rr))
	}
	step := lr * trust
	for i := range p {
		r := (m[i]/bc1)/(float32(math.Sqrt(float64(v[i]/bc2)))+eps) + wd*p[i]
		p[i] -= step * r
	}
}

func lambScalarF64(p, g, m, v []float64, lr, b1, b2, eps, wd, bc1, bc2 float64) {
	g, m, v = g[:len(p)], m[:len(p)], v[:len(p)]
	var pp, rr float64
	for i := range p {
		m[i] = b1*m[i] + (1-b1)*g[i]
		v[i] = b2*v[i] + (1-b2)*g[i]*g[i]
		r := (m[i]/bc1)/(math.Sqrt(v[i]/bc2)+eps) + wd*p[i]
		pp += p[i] * p[i]
		rr += r * r
	}
	trust := 1.0
	if pp > 0 && rr > 0 {
		trust = math.Sqrt(pp) / math.Sqrt(rr)
	}
	step := lr * trust
	for i := range p {
		r := (m[i]/bc1)/(math.Sqrt(v[i]/bc2)+eps) + wd*p[i]
		p[i] -= step * r
	}
}
