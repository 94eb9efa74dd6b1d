module github.com/kemigo/kemigo

go 1.26.8

require (
	github.com/emiago/sipgo v1.7.3
	github.com/rs/zerolog v1.35.1
)

require (
	github.com/BurntSushi/toml v1.6.0 // indirect
	github.com/gobwas/httphead v0.1.0 // indirect
	github.com/gobwas/pool v0.2.1 // indirect
	github.com/gobwas/ws v1.3.2 // indirect
	github.com/google/uuid v1.6.0 // indirect
	github.com/mattn/go-colorable v0.1.14 // indirect
	github.com/mattn/go-isatty v0.0.20 // indirect
	golang.org/x/sync v0.16.0 // indirect
	golang.org/x/sys v0.29.0 // indirect
)
