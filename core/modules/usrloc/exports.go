package usrloc

import "github.com/kemigo/kemigo/core/kemi"

// Exports declares KSR.usrloc.*: Kamailio 5.6's usrloc module has no KEMI
// functions (catalog.tsv lists none); scripts reach it through registrar.
func (m *Module) Exports() []kemi.Export { return nil }
