module github.com/fuseopt/fuseopt/kernels/_neon

go 1.26.0

require github.com/fuseopt/fuseopt v0.0.0

replace github.com/fuseopt/fuseopt => ../..
