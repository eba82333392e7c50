package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// progressBar draws the progress of a long run on one terminal line of
// stderr. It stays silent for the first delay, so that short runs print
// nothing, and redraws at most every interval.
type progressBar struct {
	w        io.Writer
	now      func() time.Time
	start    time.Time
	last     time.Time
	delay    time.Duration
	interval time.Duration
	width    int
	shown    bool
}

// progressMode parses -progress: auto draws the bar when stderr is a
// terminal, always and never say what they say.
func newProgress(mode string, w io.Writer) (*progressBar, error) {
	on := false
	switch mode {
	case "auto":
		if f, ok := w.(*os.File); ok {
			if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
				on = true
			}
		}
	case "always":
		on = true
	case "never":
	default:
		return nil, fmt.Errorf("-progress %q: want auto, always or never", mode)
	}
	if !on {
		return nil, nil
	}
	return &progressBar{w: w, now: time.Now, delay: 2 * time.Second, interval: 100 * time.Millisecond, width: 30}, nil
}

// update is a bench.Progress.
func (p *progressBar) update(done, total int, what string) {
	if p == nil || total <= 0 {
		return
	}
	t := p.now()
	if p.start.IsZero() {
		p.start = t
	}
	el := t.Sub(p.start)
	if el < p.delay || (t.Sub(p.last) < p.interval && done < total) {
		return
	}
	p.last, p.shown = t, true
	frac := float64(done) / float64(total)
	fill := int(frac * float64(p.width))
	eta := "?"
	if done > 0 {
		eta = (time.Duration(float64(el)/frac) - el).Round(time.Second).String()
	}
	line := fmt.Sprintf("[%s%s] %3.0f%%  eta %s  %s", strings.Repeat("#", fill), strings.Repeat(".", p.width-fill), 100*frac, eta, what)
	fmt.Fprintf(p.w, "\r%-78.78s", line)
}

// finish clears the line if the bar was drawn.
func (p *progressBar) finish() {
	if p != nil && p.shown {
		fmt.Fprintf(p.w, "\r%78s\r", "")
		p.shown = false
	}
}

// callback returns p.update, or nil for no bar.
func (p *progressBar) callback() func(done, total int, what string) {
	if p == nil {
		return nil
	}
	return p.update
}
