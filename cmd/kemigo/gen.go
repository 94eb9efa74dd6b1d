package main

import (
	"io"

	"github.com/kemigo/kemigo/core/kemi/gen"
	"github.com/kemigo/kemigo/core/proxy"
)

func writeStubs(w io.Writer) error  { return gen.Stubs(w, proxy.ExportTable()) }
func writeAPIDoc(w io.Writer) error { return gen.APIDoc(w, proxy.ExportTable()) }
