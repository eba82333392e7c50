package pool

// Of returns the Pool inside a *solve.Pool (nil for a nil one), so that
// optim's Muon can run its element-wise passes on the goroutines that run
// its Newton–Schulz products instead of starting a second set. Package
// solve sets it when it is initialised (it cannot be named here: solve
// imports this package); it is nil in a program that does not import solve.
var Of func(solvePool any) *Pool
