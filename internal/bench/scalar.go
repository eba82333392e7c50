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

// adamaxScalarF32 is one torch.optim.Adamax step (no weight decay), with
// bc1 = 1-β1^t:
//
//	m = β1·m + (1-β1)·g
//	u = max(β2·u, |g| + eps)
//	p -= lr/bc1 · m/u
func adamaxScalarF32(p, g, m, u []float32, lr, b1, b2, eps, bc1 float32) {
	g, m, u = g[:len(p)], m[:len(p)], u[:len(p)]
	clr := lr / bc1
	for i := range p {
		m[i] = b1*m[i] + (1-b1)*g[i]
		u[i] = max(b2*u[i], float32(math.Abs(float64(g[i])))+eps)
		p[i] -= clr * m[i] / u[i]
	}
}

func adamaxScalarF64(p, g, m, u []float64, lr, b1, b2, eps, bc1 float64) {
	g, m, u = g[:len(p)], m[:len(p)], u[:len(p)]
	clr := lr / bc1
	for i := range p {
		m[i] = b1*m[i] + (1-b1)*g[i]
		u[i] = max(b2*u[i], math.Abs(g[i])+eps)
		p[i] -= clr * m[i] / u[i]
	}
}

// adadeltaScalarF32 is one torch.optim.Adadelta step (no weight decay):
//
//	v = ρ·v + (1-ρ)·g²
//	delta = sqrt(acc + eps)/sqrt(v + eps)·g
//	acc = ρ·acc + (1-ρ)·delta²
//	p -= lr·delta
func adadeltaScalarF32(p, g, v, acc []float32, lr, rho, eps float32) {
	g, v, acc = g[:len(p)], v[:len(p)], acc[:len(p)]
	for i := range p {
		v[i] = rho*v[i] + (1-rho)*g[i]*g[i]
		std := float32(math.Sqrt(float64(v[i] + eps)))
		delta := float32(math.Sqrt(float64(acc[i]+eps))) / std * g[i]
		acc[i] = rho*acc[i] + (1-rho)*delta*delta
		p[i] -= lr * delta
	}
}

func adadeltaScalarF64(p, g, v, acc []float64, lr, rho, eps float64) {
	g, v, acc = g[:len(p)], v[:len(p)], acc[:len(p)]
	for i := range p {
		v[i] = rho*v[i] + (1-rho)*g[i]*g[i]
		std := math.Sqrt(v[i] + eps)
		delta := math.Sqrt(acc[i]+eps) / std * g[i]
		acc[i] = rho*acc[i] + (1-rho)*delta*delta
		p[i] -= lr * delta
	}
}

// nadamScalars returns what a stack computes once per NAdam step t, with
// math.Pow, for a parameter that has taken every step: 1-β2^t and the
// steps of g and m, cg = -lr·(1-μ_t)/(1-μprod) and cm =
// -lr·μ_{t+1}/(1-μprod·μ_{t+1}), μ_i = β1·(1 - ½·0.96^(i·ψ)).
func nadamScalars(t int) (bc2, cg, cm float64) {
	mu := func(i int) float64 { return beta1 * (1 - 0.5*math.Pow(0.96, float64(i)*psiNAdam)) }
	prod := 1.0
	for i := 1; i <= t; i++ {
		prod *= mu(i)
	}
	next := mu(t + 1)
	return 1 - pow(beta2, t), -lrNAdam * (1 - mu(t)) / (1 - prod), -lrNAdam * next / (1 - prod*next)
}

// nadamScalarF32 is one torch.optim.NAdam step (no weight decay):
//
//	m = β1·m + (1-β1)·g
//	v = β2·v + (1-β2)·g²
//	d = sqrt(v/bc2) + eps
//	p += cg·g/d; p += cm·m/d
func nadamScalarF32(p, g, m, v []float32, b1, b2, eps, bc2, cg, cm float32) {
	g, m, v = g[:len(p)], m[:len(p)], v[:len(p)]
	for i := range p {
		m[i] = b1*m[i] + (1-b1)*g[i]
		v[i] = b2*v[i] + (1-b2)*g[i]*g[i]
		d := float32(math.Sqrt(float64(v[i]/bc2))) + eps
		p[i] += cg * g[i] / d
		p[i] += cm * m[i] / d
	}
}

func nadamScalarF64(p, g, m, v []float64, b1, b2, eps, bc2, cg, cm float64) {
	g, m, v = g[:len(p)], m[:len(p)], v[:len(p)]
	for i := range p {
		m[i] = b1*m[i] + (1-b1)*g[i]
		v[i] = b2*v[i] + (1-b2)*g[i]*g[i]
		d := math.Sqrt(v[i]/bc2) + eps
		p[i] += cg * g[i] / d
		p[i] += cm * m[i] / d
	}
}

// radamScalars returns what a stack computes once per RAdam step t, with
// math.Pow: 1-β1^t, lr·r_t·sqrt(1-β2^t) and whether the step is
// rectified (ρ_t > 5).
func radamScalars(t int) (bc1, step float64, rect bool) {
	bc1, bc2 := biasCorrections(t)
	rhoInf := 2/(1-beta2) - 1
	rhoT := rhoInf - 2*float64(t)*pow(beta2, t)/bc2
	if rhoT <= 5 {
		return bc1, lrAdam, false
	}
	r := math.Sqrt((rhoT - 4) * (rhoT - 2) * rhoInf / ((rhoInf - 4) * (rhoInf - 2) * rhoT))
	return bc1, lrAdam * r * math.Sqrt(bc2), true
}

// radamScalarF32 is one torch.optim.RAdam step (no weight decay):
//
//	m = β1·m + (1-β1)·g
//	v = β2·v + (1-β2)·g²
//	rectified: p -= step·(m/bc1)/(sqrt(v) + eps), step = lr·r_t·sqrt(bc2)
//	else:      p -= lr·(m/bc1)
func radamScalarF32(p, g, m, v []float32, lr, b1, b2, eps, bc1, step float32, rect bool) {
	g, m, v = g[:len(p)], m[:len(p)], v[:len(p)]
	for i := range p {
		m[i] = b1*m[i] + (1-b1)*g[i]
		v[i] = b2*v[i] + (1-b2)*g[i]*g[i]
		mhat := m[i] / bc1
		if rect {
			p[i] -= step * mhat / (float32(math.Sqrt(float64(v[i]))) + eps)
		} else {
			p[i] -= lr * mhat
		}
	}
}

func radamScalarF64(p, g, m, v []float64, lr, b1, b2, eps, bc1, step float64, rect bool) {
	g, m, v = g[:len(p)], m[:len(p)], v[:len(p)]
	for i := range p {
		m[i] = b1*m[i] + (1-b1)*g[i]
		v[i] = b2*v[i] + (1-b2)*g[i]*g[i]
		mhat := m[i] / bc1
		if rect {
			p[i] -= step * mhat / (math.Sqrt(v[i]) + eps)
		} else {
			p[i] -= lr * mhat
		}
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

// adafactorScalarF32 is one torch.optim.Adafactor step of a rows×cols
// matrix (no weight decay, eps1 the machine epsilon), as a plain loop
// writes _single_tensor_adafactor: the parameter's RMS, the row and column
// means of g² into the factors, their mean, then u = g/sqrt(max(v, ε1²))
// twice, for its RMS and for the update. colSum is scratch of cols
// elements.
func adafactorScalarF32(p, g, rv, cv, colSum []float32, rows, cols, t int, lr, eps2, d float32) {
	n := rows * cols
	p, g, rv, cv, colSum = p[:n], g[:n], rv[:rows], cv[:cols], colSum[:cols]
	w := float32(math.Pow(float64(t), beta2DecayAdafactor))
	rho := min(lr, float32(1/math.Sqrt(float64(t))))
	const eps1 = 0x1p-23
	rn := float32(math.Sqrt(float64(n)))
	var ss float32
	for _, x := range p {
		ss += x * x
	}
	alpha := max(eps2, float32(math.Sqrt(float64(ss)))/rn) * rho
	clear(colSum)
	for i := range rows {
		var s float32
		for j, x := range g[i*cols : (i+1)*cols] {
			s += x * x
			colSum[j] += x * x
		}
		rv[i] += w * (s/float32(cols) - rv[i])
	}
	var mean float32
	for _, x := range rv {
		mean += x
	}
	mean = max(mean/float32(rows), eps1)
	for j := range cv {
		cv[j] += w * (colSum[j]/float32(rows) - cv[j])
	}
	var su float32
	for i := range rows {
		r := rv[i] / mean
		for j, x := range g[i*cols : (i+1)*cols] {
			u := x / float32(math.Sqrt(float64(max(r*cv[j], eps1*eps1))))
			su += u * u
		}
	}
	a := alpha / max(1, float32(math.Sqrt(float64(su)))/(rn*d))
	for i := range rows {
		r := rv[i] / mean
		pr := p[i*cols : (i+1)*cols]
		for j, x := range g[i*cols : (i+1)*cols] {
			pr[j] -= a * x / float32(math.Sqrt(float64(max(r*cv[j], eps1*eps1))))
		}
	}
}

func adafactorScalarF64(p, g, rv, cv, colSum []float64, rows, cols, t int, lr, eps2, d float64) {
	n := rows * cols
	p, g, rv, cv, colSum = p[:n], g[:n], rv[:rows], cv[:cols], colSum[:cols]
	w := math.Pow(float64(t), beta2DecayAdafactor)
	rho := min(lr, 1/math.Sqrt(float64(t)))
	const eps1 = 0x1p-52
	rn := math.Sqrt(float64(n))
	var ss float64
	for _, x := range p {
		ss += x * x
	}
	alpha := max(eps2, math.Sqrt(ss)/rn) * rho
	clear(colSum)
	for i := range rows {
		var s float64
		for j, x := range g[i*cols : (i+1)*cols] {
			s += x * x
			colSum[j] += x * x
		}
		rv[i] += w * (s/float64(cols) - rv[i])
	}
	var mean float64
	for _, x := range rv {
		mean += x
	}
	mean = max(mean/float64(rows), eps1)
	for j := range cv {
		cv[j] += w * (colSum[j]/float64(rows) - cv[j])
	}
	var su float64
	for i := range rows {
		r := rv[i] / mean
		for j, x := range g[i*cols : (i+1)*cols] {
			u := x / math.Sqrt(max(r*cv[j], eps1*eps1))
			su += u * u
		}
	}
	a := alpha / max(1, math.Sqrt(su)/(rn*d))
	for i := range rows {
		r := rv[i] / mean
		pr := p[i*cols : (i+1)*cols]
		for j, x := range g[i*cols : (i+1)*cols] {
			pr[j] -= a * x / math.Sqrt(max(r*cv[j], eps1*eps1))
		}
	}
}

// adafactorVecScalarF32 is one torch.optim.Adafactor step of a vector (no
// weight decay, eps1 the machine epsilon), as a plain loop writes it:
// variance = lerp(variance, g², w), u = g/sqrt(max(variance, ε1²)).
func adafactorVecScalarF32(p, g, v []float32, t int, lr, eps2, d float32) {
	n := len(p)
	g, v = g[:n], v[:n]
	w := float32(math.Pow(float64(t), beta2DecayAdafactor))
	rho := min(lr, float32(1/math.Sqrt(float64(t))))
	const eps1 = 0x1p-23
	rn := float32(math.Sqrt(float64(n)))
	var ss, su float32
	for _, x := range p {
		ss += x * x
	}
	alpha := max(eps2, float32(math.Sqrt(float64(ss)))/rn) * rho
	for i, x := range g {
		v[i] += w * (x*x - v[i])
		u := x / float32(math.Sqrt(float64(max(v[i], eps1*eps1))))
		su += u * u
	}
	a := alpha / max(1, float32(math.Sqrt(float64(su)))/(rn*d))
	for i, x := range g {
		p[i] -= a * x / float32(math.Sqrt(float64(max(v[i], eps1*eps1))))
	}
}

func adafactorVecScalarF64(p, g, v []float64, t int, lr, eps2, d float64) {
	n := len(p)
	g, v = g[:n], v[:n]
	w := math.Pow(float64(t), beta2DecayAdafactor)
	rho := min(lr, 1/math.Sqrt(float64(t)))
	const eps1 = 0x1p-52
	rn := math.Sqrt(float64(n))
	var ss, su float64
	for _, x := range p {
		ss += x * x
	}
	alpha := max(eps2, math.Sqrt(ss)/rn) * rho
	for i, x := range g {
		v[i] += w * (x*x - v[i])
		u := x / math.Sqrt(max(v[i], eps1*eps1))
		su += u * u
	}
	a := alpha / max(1, math.Sqrt(su)/(rn*d))
	for i, x := range g {
		p[i] -= a * x / math.Sqrt(max(v[i], eps1*eps1))
	}
}
