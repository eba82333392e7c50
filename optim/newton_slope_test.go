package optim

import "testing"

// TestNewtonSlopeUnderflow: as the doc says, a factorisation that succeeds
// gives Slope = gᵀd > 0 but where gᵀd underflows (|g| of 1e-200 on
// H = I: d = g, and gᵀd = 1e-400 rounds to 0) or g = 0; then Slope is 0,
// not negative, and no error is returned.
func TestNewtonSlopeUnderflow(t *testing.T) {
	for _, gv := range []float64{1e-200, 0, 1e-100} {
		nt := &Newton{}
		g, h, d := []float64{gv}, []float64{1}, make([]float64, 1)
		res, err := nt.Direction(d, g, h)
		if err != nil {
			t.Fatalf("g = %v: %v", gv, err)
		}
		if res.FellBack || d[0] != gv {
			t.Errorf("g = %v: FellBack %v, d = %v, want d = g", gv, res.FellBack, d)
		}
		want := gv * gv
		if res.Slope != want || res.Slope < 0 {
			t.Errorf("g = %v: Slope = %v, want %v", gv, res.Slope, want)
		}
	}
}
