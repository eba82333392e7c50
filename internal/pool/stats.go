package pool

import "sync/atomic"

// Tracing reports whether the pools count what their helpers do (Stats):
// true only in a build with the pooltrace tag, for diagnosis
// (`go test -tags pooltrace`). Without the tag every count is compiled out.
const Tracing = tracing

// Stats is what the helpers of every pool did since the last ResetStats,
// counted only when Tracing is true.
type Stats struct {
	Jobs    int64 // jobs published (a job run on its caller alone is not)
	Wakes   int64 // parked helpers woken for them
	Arrived int64 // helpers that found their job still published
	Joined  int64 // helpers that ran at least one task of their job
	// CallerTasks and HelperTasks are the tasks run by worker 0 and by
	// the helpers.
	CallerTasks, HelperTasks int64
	// ArriveNs is the sum, over the arrivals, of the time from the job's
	// publication to the helper's arrival, and Arrive counts the arrivals
	// that took under 1 µs, 1–10 µs, 10–100 µs and longer.
	ArriveNs int64
	Arrive   [4]int64
	// CallerNs and HelperNs are the time worker 0 and the helpers spent in
	// their jobs' tasks (from taking part to leaving), and WaitNs the time
	// the callers then waited for the helpers' last tasks.
	CallerNs, HelperNs, WaitNs int64
}

var stats struct {
	jobs, wakes, arrived, joined, caller, helper, arriveNs atomic.Int64
	callerNs, helperNs, waitNs                             atomic.Int64
	arrive                                                 [4]atomic.Int64
}

// ReadStats returns the counts since the last ResetStats (all zero when
// Tracing is false).
func ReadStats() Stats {
	s := Stats{
		Jobs: stats.jobs.Load(), Wakes: stats.wakes.Load(),
		Arrived: stats.arrived.Load(), Joined: stats.joined.Load(),
		CallerTasks: stats.caller.Load(), HelperTasks: stats.helper.Load(),
		ArriveNs: stats.arriveNs.Load(),
		CallerNs: stats.callerNs.Load(), HelperNs: stats.helperNs.Load(), WaitNs: stats.waitNs.Load(),
	}
	for i := range s.Arrive {
		s.Arrive[i] = stats.arrive[i].Load()
	}
	return s
}

// ResetStats sets every count to zero. It must not run with a job.
func ResetStats() {
	for _, c := range []*atomic.Int64{&stats.jobs, &stats.wakes, &stats.arrived, &stats.joined, &stats.caller, &stats.helper, &stats.arriveNs, &stats.callerNs, &stats.helperNs, &stats.waitNs} {
		c.Store(0)
	}
	for i := range stats.arrive {
		stats.arrive[i].Store(0)
	}
}

// traceArrival counts a helper's arrival at a job published at pubAt.
func traceArrival(pubAt int64) {
	d := nanotime() - pubAt
	stats.arrived.Add(1)
	stats.arriveNs.Add(d)
	switch {
	case d < 1e3:
		stats.arrive[0].Add(1)
	case d < 1e4:
		stats.arrive[1].Add(1)
	case d < 1e5:
		stats.arrive[2].Add(1)
	default:
		stats.arrive[3].Add(1)
	}
}

// traceLeave counts the ran tasks of worker id as it leaves its job, and
// the time since it took part (at t0).
func traceLeave(id int, ran, t0 int64) {
	d := nanotime() - t0
	if id == 0 {
		stats.caller.Add(ran)
		stats.callerNs.Add(d)
		return
	}
	stats.helper.Add(ran)
	stats.helperNs.Add(d)
	if ran > 0 {
		stats.joined.Add(1)
	}
}
