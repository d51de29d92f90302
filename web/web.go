// Package web is the console: the agent workspace (status, chats, replies, transfer,
// close) and the shop admin's pages (routing rules, agents, canned responses,
// dry-run, audit, live stats), and the buyer demo page (a shop's chat widget), as
// static assets embedded in the binary and served on the API's port. They talk to
// the public API and WebSocket only.
package web

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed static
var static embed.FS

// Handler serves the console: index.html at /, the buyer demo page at
// /demo/shop/{shop_id}, the rest under /console/.
func Handler() http.Handler {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic("web: embedded assets missing: " + err.Error()) // a broken build
	}
	files := http.FileServer(http.FS(sub))
	mux := http.NewServeMux()
	mux.Handle("/console/", http.StripPrefix("/console/", files))
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFileFS(w, r, sub, "index.html")
	})
	mux.HandleFunc("/demo/shop/{shop}", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFileFS(w, r, sub, "demo.html")
	})
	return mux
}
