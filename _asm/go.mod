module github.com/fuseopt/fuseopt/_asm

go 1.26.0

require (
	github.com/fuseopt/fuseopt v0.0.0
	github.com/mmcloughlin/avo v0.5.0
)

require (
	golang.org/x/mod v0.27.0 // indirect
	golang.org/x/sync v0.16.0 // indirect
	golang.org/x/tools v0.36.0 // indirect
)

replace github.com/fuseopt/fuseopt => ..
