//go:build tools

// Package tools records the Go programs this repository builds (see build.sh).
package tools

import (
	_ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"
)
