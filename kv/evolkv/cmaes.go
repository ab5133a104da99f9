// Package evolkv searches per-layer KV budgets with CMA-ES, group by group
// from the bottom layer up, as EvolKV does (Yu and Chai, "EvolKV:
// Evolutionary KV Cache Compression for LLM Inference", EMNLP Findings 2025).
package evolkv

import (
	"math"
	"math/rand/v2"
	"sort"
)

// CMAES is the (μ/μ_w, λ) covariance matrix adaptation evolution strategy
// with rank-one and rank-μ updates and cumulative step-size adaptation, as in
// Hansen's tutorial ("The CMA Evolution Strategy: A Tutorial", 2016), for
// minimisation. Use Ask for a generation of candidates and Tell with their
// values. It suits the few dimensions of one group of layers: the covariance
// is decomposed by Jacobi rotations every generation.
type CMAES struct {
	n, lambda, mu       int
	weights             []float64
	mueff               float64
	cs, ds, cc, c1, cmu float64
	chiN                float64

	mean, ps, pc []float64
	sigma        float64
	c            [][]float64 // covariance
	b            [][]float64 // eigenvectors (columns)
	d            []float64   // sqrt of eigenvalues
	gen          int
	rng          *rand.Rand

	z, y [][]float64 // the last generation: standard normal draws, B·D·z

	bestX []float64
	bestF float64
}

// NewCMAES starts a search at x0 with step size sigma. lambda ≤ 0 picks the
// default population 4 + ⌊3 ln n⌋.
func NewCMAES(x0 []float64, sigma float64, lambda int, seed uint64) *CMAES {
	n := len(x0)
	if lambda <= 0 {
		lambda = 4 + int(3*math.Log(float64(n)))
	}
	lambda = max(lambda, 2)
	mu := lambda / 2
	w := make([]float64, mu)
	var sum, sum2 float64
	for i := range w {
		w[i] = math.Log(float64(mu)+0.5) - math.Log(float64(i+1))
		sum += w[i]
	}
	for i := range w {
		w[i] /= sum
		sum2 += w[i] * w[i]
	}
	mueff := 1 / sum2
	fn := float64(n)
	e := &CMAES{n: n, lambda: lambda, mu: mu, weights: w, mueff: mueff, sigma: sigma,
		rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), bestF: math.Inf(1)}
	e.cs = (mueff + 2) / (fn + mueff + 5)
	e.ds = 1 + 2*math.Max(0, math.Sqrt((mueff-1)/(fn+1))-1) + e.cs
	e.cc = (4 + mueff/fn) / (fn + 4 + 2*mueff/fn)
	e.c1 = 2 / ((fn+1.3)*(fn+1.3) + mueff)
	e.cmu = math.Min(1-e.c1, 2*(mueff-2+1/mueff)/((fn+2)*(fn+2)+mueff))
	e.chiN = math.Sqrt(fn) * (1 - 1/(4*fn) + 1/(21*fn*fn))
	e.mean = append([]float64(nil), x0...)
	e.ps, e.pc, e.d = make([]float64, n), make([]float64, n), make([]float64, n)
	e.c, e.b = identity(n), identity(n)
	for i := range e.d {
		e.d[i] = 1
	}
	return e
}

func identity(n int) [][]float64 {
	m := make([][]float64, n)
	for i := range m {
		m[i] = make([]float64, n)
		m[i][i] = 1
	}
	return m
}

// Lambda is the population size.
func (e *CMAES) Lambda() int { return e.lambda }

// Sigma is the current step size.
func (e *CMAES) Sigma() float64 { return e.sigma }

// Ask returns a new generation of lambda candidates.
func (e *CMAES) Ask() [][]float64 {
	n := e.n
	e.z, e.y = make([][]float64, e.lambda), make([][]float64, e.lambda)
	xs := make([][]float64, e.lambda)
	for k := range xs {
		z := make([]float64, n)
		for i := range z {
			z[i] = e.rng.NormFloat64()
		}
		y := make([]float64, n)
		for i := range n {
			for j := range n {
				y[i] += e.b[i][j] * e.d[j] * z[j]
			}
		}
		x := make([]float64, n)
		for i := range x {
			x[i] = e.mean[i] + e.sigma*y[i]
		}
		e.z[k], e.y[k], xs[k] = z, y, x
	}
	return xs
}

// Tell updates the distribution with the values of the candidates Ask
// returned, in the same order (smaller is better).
func (e *CMAES) Tell(xs [][]float64, fs []float64) {
	n := e.n
	idx := make([]int, len(fs))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return fs[idx[a]] < fs[idx[b]] })
	if f := fs[idx[0]]; f < e.bestF {
		e.bestF, e.bestX = f, append([]float64(nil), xs[idx[0]]...)
	}
	// Weighted mean of the best mu steps.
	yw := make([]float64, n)
	zw := make([]float64, n)
	for r := range e.mu {
		k := idx[r]
		for i := range n {
			yw[i] += e.weights[r] * e.y[k][i]
			zw[i] += e.weights[r] * e.z[k][i]
		}
	}
	for i := range n {
		e.mean[i] += e.sigma * yw[i]
	}
	// C^(-1/2)·yw = B·zw.
	bz := make([]float64, n)
	for i := range n {
		for j := range n {
			bz[i] += e.b[i][j] * zw[j]
		}
	}
	cs := math.Sqrt(e.cs * (2 - e.cs) * e.mueff)
	var psNorm float64
	for i := range n {
		e.ps[i] = (1-e.cs)*e.ps[i] + cs*bz[i]
		psNorm += e.ps[i] * e.ps[i]
	}
	psNorm = math.Sqrt(psNorm)
	e.gen++
	hsig := 0.0
	if psNorm/math.Sqrt(1-math.Pow(1-e.cs, 2*float64(e.gen)))/e.chiN < 1.4+2/float64(n+1) {
		hsig = 1
	}
	cc := math.Sqrt(e.cc * (2 - e.cc) * e.mueff)
	for i := range n {
		e.pc[i] = (1-e.cc)*e.pc[i] + hsig*cc*yw[i]
	}
	dh := (1 - hsig) * e.cc * (2 - e.cc)
	for i := range n {
		for j := range n {
			rankMu := 0.0
			for r := range e.mu {
				k := idx[r]
				rankMu += e.weights[r] * e.y[k][i] * e.y[k][j]
			}
			e.c[i][j] = (1-e.c1-e.cmu)*e.c[i][j] + e.c1*(e.pc[i]*e.pc[j]+dh*e.c[i][j]) + e.cmu*rankMu
		}
	}
	e.sigma *= math.Exp((e.cs / e.ds) * (psNorm/e.chiN - 1))
	e.decompose()
}

// Best is the best candidate told so far and its value.
func (e *CMAES) Best() ([]float64, float64) { return e.bestX, e.bestF }

// decompose refreshes B and D from C by cyclic Jacobi rotations.
func (e *CMAES) decompose() {
	n := e.n
	a := make([][]float64, n)
	for i := range a {
		a[i] = append([]float64(nil), e.c[i]...)
		for j := range i {
			a[i][j] = (a[i][j] + a[j][i]) / 2 // keep C symmetric
			a[j][i] = a[i][j]
			e.c[i][j], e.c[j][i] = a[i][j], a[i][j]
		}
	}
	v := identity(n)
	for sweep := 0; sweep < 100; sweep++ {
		var off float64
		for i := range n {
			for j := i + 1; j < n; j++ {
				off += a[i][j] * a[i][j]
			}
		}
		if off < 1e-30 {
			break
		}
		for p := range n {
			for q := p + 1; q < n; q++ {
				if math.Abs(a[p][q]) < 1e-300 {
					continue
				}
				theta := (a[q][q] - a[p][p]) / (2 * a[p][q])
				t := math.Copysign(1, theta) / (math.Abs(theta) + math.Sqrt(theta*theta+1))
				c := 1 / math.Sqrt(t*t+1)
				s := t * c
				for k := range n {
					akp, akq := a[k][p], a[k][q]
					a[k][p], a[k][q] = c*akp-s*akq, s*akp+c*akq
				}
				for k := range n {
					apk, aqk := a[p][k], a[q][k]
					a[p][k], a[q][k] = c*apk-s*aqk, s*apk+c*aqk
				}
				for k := range n {
					vkp, vkq := v[k][p], v[k][q]
					v[k][p], v[k][q] = c*vkp-s*vkq, s*vkp+c*vkq
				}
			}
		}
	}
	for i := range n {
		e.d[i] = math.Sqrt(math.Max(a[i][i], 1e-20))
	}
	e.b = v
}
