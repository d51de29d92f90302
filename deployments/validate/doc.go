// Package validate checks the deployment artifacts under deployments/ with the
// parsers their tools use (the Dockerfile's with BuildKit's, the systemd unit's with
// go-systemd's), and runs what can run here: the binary built with the image's
// flags, and every configuration an artifact passes, through `fanline serve
// --check-config`. It is a module of its own, so these parsers stay out of the
// product's go.mod; `make test` runs it.
package validate
