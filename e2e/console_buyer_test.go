package e2e

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/fanline/fanline/internal/testharness"
	"github.com/fanline/fanline/internal/wire"
)

// TestBuyerPage drives the buyer demo page and the agent console in two headless
// browsers: the buyer opens a chat from a product page and waits in line; the agent
// comes online and gets it (the page says so), sees where it came from, types (the
// page shows it) and answers; the buyer types (the console shows it), answers and
// sends a photo, which both sides show as a thumbnail.
func TestBuyerPage(t *testing.T) {
	ts := startServer(t, nil)
	salesShop(t, ts.URL, "acme", "ann")

	buyer := testharness.StartBrowser(t)
	buyer.Open(ts.URL + "/demo/shop/acme")
	buyer.WaitText("h1", "Chat with acme")
	buyer.Set("#start [name=user_id]", "zoe")
	buyer.Type("#start [name=ref]", "p-1001")
	buyer.Type("#start [name=text]", "is it in stock in size M?")
	buyer.Click("#start button")
	buyer.WaitText("#queue", "You are number 1 in line")
	buyer.WaitText("#messages", "is it in stock in size M?")

	agent := signInConsole(t, ts.URL, "ann", wire.RoleAgent, "acme")
	agent.Click(`[data-status=online]`)
	agent.WaitText("#chats", "zoe")
	buyer.WaitText("#queue", "You are chatting with the shop.")
	agent.Click("#chats li")
	agent.WaitText("#messages", "is it in stock in size M?")
	agent.WaitText("#context", "product p-1001")

	agent.Type("#reply-text", "yes")
	buyer.WaitText("#typing", "The shop is typing")
	agent.Type("#reply-text", ", size M too\uE007")
	buyer.WaitText("#messages li:last-child", "Shop · ")
	buyer.WaitText("#messages li:last-child .text", "yes, size M too")

	buyer.Type("#text", "great")
	agent.WaitText("#typing", "zoe is typing")
	buyer.Type("#text", ", here is the label\uE007")
	agent.WaitText("#messages li:last-child .text", "great, here is the label")

	photo, _, _ := noisePNG(t, 400, 300)
	path := filepath.Join(t.TempDir(), "label.png")
	if err := os.WriteFile(path, photo, 0o644); err != nil {
		t.Fatal(err)
	}
	buyer.Type("#photo", path)
	buyer.Click("#send button")
	buyer.Wait(`(() => { const i = document.querySelector("#messages li:last-child img"); return i && i.complete && i.naturalWidth === 256; })()`)
	agent.Wait(`(() => { const i = document.querySelector("#messages li:last-child img.thumb"); return i && i.complete && i.naturalWidth === 256; })()`)
	buyer.Screenshot("demo-buyer")
	agent.Screenshot("demo-agent")
}
