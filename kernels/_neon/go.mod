module github.com/fuseopt/fuseopt/kernels/_neon

go 1.26
