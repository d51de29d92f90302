package e2e

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fanline/fanline/internal/testharness"
	"github.com/fanline/fanline/internal/wire"
)

// signInConsole opens the console in a new browser and signs in with a dev token
// as user, an agent or admin of shop.
func signInConsole(t *testing.T, url, user, role, shop string) *testharness.Browser {
	t.Helper()
	b := testharness.StartBrowser(t)
	b.Open(url + "/")
	b.WaitText("h1", "fanline console")
	b.Type("#login-form [name=user_id]", user)
	b.JS(`document.querySelector("#login-form [name=role]").value = arguments[0];`, role)
	b.Type("#login-form [name=shop_id]", shop)
	b.Click("#login-form button")
	b.WaitText("#who", fmt.Sprintf("%s (%s of %s)", user, role, shop))
	return b
}

// TestConsole drives the web console in headless Chromium: an admin signs in, saves
// agents and routing rules (a bad document shows its problems), edits the canned
// responses (a bad shortcut shows its problem next to it), dry-runs a chat; an agent
// signs in, goes online, gets a buyer's chat from an order page (a notification
// while the tab is in the background, an unread badge), lists the shortcuts and
// opens it with the keyboard, reads it (sender, time, where it came from; the buyer
// gets a read receipt), sees the buyer typing, replies with Enter (a
// line broken with Shift+Enter) and with a canned response picked by "/" (the
// buyer's SDK gets them from the shop, and the agent's typing), and transfers it to
// a colleague picked by load, who closes it; the admin's audit shows the decisions.
func TestConsole(t *testing.T) {
	ts := startServer(t, nil)
	ctx := context.Background()
	admin := signInConsole(t, ts.URL, "boss", wire.RoleAdmin, "acme")
	admin.Wait(`document.querySelector("#admin").dataset.loaded === "1"`)

	// Agents through the table: a bad capacity shows its problem next to it.
	admin.Click("#add-agent")
	admin.Type("#agents-table tbody tr:nth-child(1) [name=agent_id]", "ann")
	admin.Type("#agents-table tbody tr:nth-child(1) [name=skills]", "after_sales")
	admin.Set("#agents-table tbody tr:nth-child(1) [name=capacity]", "3")
	admin.Click("#add-agent")
	admin.Type("#agents-table tbody tr:nth-child(2) [name=agent_id]", "pat")
	admin.Type("#agents-table tbody tr:nth-child(2) [name=name]", "Pat Lee")
	admin.Type("#agents-table tbody tr:nth-child(2) [name=skills]", "pre_sales")
	admin.Set("#agents-table tbody tr:nth-child(2) [name=capacity]", "0")
	admin.Click("#save-agent-table")
	admin.WaitText("#agents-table tbody tr:nth-child(2) td:nth-child(4) .problem", "at least one chat")
	admin.Set("#agents-table tbody tr:nth-child(2) [name=capacity]", "2")
	admin.Click("#save-agent-table")
	admin.WaitText("#agents-saved", "Saved 2 agents.")
	admin.WaitText("#agents-table", "offline (disconnected), 0/3")
	admin.Wait(`document.querySelector("#agents").value.includes('"name": "Pat Lee"')`)
	admin.Set("#rules", `{"skills":[{"name":"pre_sales","strategy":"fastest"}],"entries":{"order":{"skill":"aftersales"}}}`)
	admin.Click("#save-rules")
	admin.WaitText("#rules-problems", `unknown skill "aftersales"`)
	admin.WaitText("#rules-problems", "is not least_loaded or round_robin")
	admin.Set("#rules", `{"skills":[{"name":"pre_sales"},{"name":"after_sales"}],"entries":{"product":{"skill":"pre_sales"},"order":{"skill":"after_sales"}}}`)
	admin.Click("#save-rules")
	admin.WaitText("#rules-version", "version 1")
	admin.Click("#add-canned")
	admin.Type("#canned tbody tr:nth-child(1) input", "thanks")
	admin.Type("#canned tbody tr:nth-child(1) textarea", "Thank you for your patience!")
	admin.Click("#add-canned")
	admin.Type("#canned tbody tr:nth-child(2) input", "Bad Cut")
	admin.Type("#canned tbody tr:nth-child(2) textarea", "Sorry for the trouble.")
	admin.Click("#save-canned")
	admin.WaitText("#canned tbody tr:nth-child(2) td:nth-child(1) .problem", "lower-case letters")
	admin.Screenshot("console-canned-problem")
	admin.Set("#canned tbody tr:nth-child(2) input", "sorry")
	admin.Click("#save-canned")
	admin.WaitText("#canned-saved", "Saved 2 responses.")
	admin.Type("#dry-form [name=buyer_id]", "zoe")
	admin.Type("#dry-form [name=entry]", "order")
	admin.Click("#dry-form button")
	admin.WaitText("#dry-result", "after_sales")
	admin.WaitText("#dry-result", "ann offline")

	agent := signInConsole(t, ts.URL, "ann", wire.RoleAgent, "acme")
	agent.WaitText("#status", "offline") // as the router has ann when she signs in
	agent.Click(`[data-status=online]`)
	agent.WaitText("#status", "online")
	agent.Wait(`document.querySelector("[data-status=online]").getAttribute("aria-pressed") === "true"`)
	// The tab is in the background, with notifications allowed: the browser's
	// Notification and visibility are stood in for, to see what the console asks.
	agent.JS(`window.notes = [];
		window.Notification = class { constructor(title, o) { window.notes.push(title + ": " + o.body); } static get permission() { return "granted"; } };
		Object.defineProperty(document, "hidden", { configurable: true, get: () => true });`)

	buyer := connect(t, ts.URL, "carla")
	var chat wire.ChatState
	var err error
	testharness.WaitFor(t, 10*time.Second, "ann's console connection to count as presence", func() bool {
		chat, err = buyer.OpenChat(ctx, "acme", wire.OpenChatRequest{Entry: "order", OrderID: "o-9", Text: "where is my parcel"})
		if err != nil {
			t.Fatal(err)
		}
		return chat.State == "assigned"
	})
	agent.WaitText("#chats", "carla")
	if _, err := buyer.Send(ctx, wire.SendRequest{ConversationID: chat.ConversationID, Type: "text", Body: text("hello?")}); err != nil {
		t.Fatal(err)
	}
	// Unread: "hello?", and the first message too if it was pushed to ann (it is
	// when the chat was assigned as it opened); the title shows the same count.
	agent.Wait(`(() => { const b = document.querySelector("#chats .badge");
		return b && /^[12]$/.test(b.textContent) && document.title === "(" + b.textContent + ") fanline console"; })()`)
	agent.Wait(`window.notes.includes("New chat: carla (after_sales)") && window.notes.includes("carla: hello?")`)
	agent.JS(`delete document.hidden;`)
	// The keyboard: ? lists the shortcuts, j picks the chat, Enter opens it.
	agent.Type("body", "?")
	agent.Wait(`document.querySelector("#shortcuts").open`)
	agent.Screenshot("console-shortcuts")
	agent.Type("#shortcuts button", "\uE00C")
	agent.Wait(`!document.querySelector("#shortcuts").open`)
	agent.Type("body", "j")
	agent.Wait(`document.querySelector("#chats li.cursor")`)
	agent.Type("body", "\uE007")
	agent.WaitText("#messages", "where is my parcel")
	agent.WaitText("#messages li:last-child .meta", "carla · ")
	agent.WaitText("#messages li.day", "Today")
	agent.WaitText("#context", "order o-9")
	agent.WaitText("#context", "after_sales")
	agent.Wait(`!document.querySelector("#chats .badge") && document.title === "fanline console"`)
	// Opening the chat read it: the buyer gets a receipt from the shop.
	var got []wire.Entry
	testharness.WaitFor(t, 10*time.Second, "the buyer to get the console's read receipt", func() bool {
		for {
			select {
			case e := <-buyer.Entries():
				if e.ConversationID != chat.ConversationID {
					continue
				}
				if e.Kind == wire.KindRead && e.From == "acme" {
					return true
				}
				if e.Kind == wire.KindMessage {
					got = append(got, e)
				}
			default:
				return false
			}
		}
	})
	if err := buyer.Typing(ctx, chat.ConversationID); err != nil {
		t.Fatal(err)
	}
	agent.WaitText("#typing", "carla is typing")
	// Shift+Enter breaks the line, Enter sends; the buyer hears the agent typing.
	agent.Type("#reply-text", "on its way\uE008\uE007\uE000arriving Monday\uE007")
	agent.WaitText("#messages li:last-child .meta", "You · ")
	agent.WaitText("#messages li:last-child .text", "on its way\narriving Monday")
	if ty, ok := nextTyping(buyer, 10*time.Second); !ok || ty.From != "acme" || ty.ConversationID != chat.ConversationID {
		t.Fatalf("the buyer's typing frame from the console: %+v %v", ty, ok)
	}
	// "/" offers the shop's canned responses; Enter picks one, Enter again sends it.
	agent.Type("#reply-text", "/so")
	agent.WaitText("#canned-list", "/sorry")
	agent.Screenshot("console-canned-picker")
	agent.Type("#reply-text", "\uE007")
	agent.Wait(`document.querySelector("#reply-text").value === "Sorry for the trouble."`)
	agent.Type("#reply-text", "\uE007")
	agent.WaitText("#messages li:last-child .text", "Sorry for the trouble.")
	testharness.WaitFor(t, 10*time.Second, "the buyer to get the console's replies", func() bool {
		messagesOf(buyer, chat.ConversationID, &got)
		return len(got) >= 4 && string(got[len(got)-1].Body) == `{"text":"Sorry for the trouble."}`
	})
	if r := got[len(got)-2]; r.From != "acme" || r.AgentID != "ann" || string(r.Body) != `{"text":"on its way\narriving Monday"}` {
		t.Fatalf("the buyer got %+v", r)
	}
	// The buyer reads them: the console shows its messages read.
	agent.WaitText("#messages li:last-child .meta", "You · ")
	agent.WaitText("#messages li:last-child .state", "Sent")
	if err := buyer.MarkRead(ctx, chat.ConversationID, got[len(got)-1].MsgID); err != nil {
		t.Fatal(err)
	}
	agent.WaitText("#messages li:last-child .state", "Read")
	agent.Wait(`[...document.querySelectorAll("#messages li.mine .state")].every((s) => s.textContent === " · Read")`)
	agent.Screenshot("console-agent")
	// At a tablet's width the chat list goes above the conversation.
	agent.Resize(800, 1100)
	agent.Wait(`document.querySelector(".col.narrow").getBoundingClientRect().bottom <= document.querySelector("#chat-title").getBoundingClientRect().top`)
	agent.Screenshot("console-agent-tablet")
	agent.Resize(1280, 900)
	// The buyer sends a photo of the broken item and a file: the console shows the
	// photo's 256 px thumbnail and a link to the file.
	photo, _, _ := noisePNG(t, 600, 400)
	pkey, err := buyer.Upload(ctx, chat.ConversationID, bytes.NewReader(photo), int64(len(photo)), "image/png", "broken.png")
	if err != nil {
		t.Fatal(err)
	}
	fkey, err := buyer.Upload(ctx, chat.ConversationID, strings.NewReader("order o-9, receipt"), 18, "text/plain", "receipt.txt")
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{
		fmt.Sprintf(`{"object_key":%q,"mime_type":"image/png","size":%d,"width":600,"height":400}`, pkey, len(photo)),
		fmt.Sprintf(`{"object_key":%q,"mime_type":"text/plain","size":18,"name":"receipt.txt"}`, fkey),
	} {
		typ := "image"
		if strings.Contains(b, "text/plain") {
			typ = "file"
		}
		if _, err := buyer.Send(ctx, wire.SendRequest{ConversationID: chat.ConversationID, Type: typ, Body: []byte(b)}); err != nil {
			t.Fatal(err)
		}
	}
	agent.Wait(`(() => { const i = document.querySelector("#messages img.thumb"); return i && i.complete && i.naturalWidth === 256 && i.naturalHeight === 170; })()`)
	agent.WaitText("#messages a.file", "receipt.txt (18 B)")
	agent.Screenshot("console-media")
	// pat comes online: ann transfers the chat to him by picking him (with his load)
	// from the shop's free agents, and pat closes it.
	pat := connectAs(t, ts.URL, "pat", wire.RoleAgent, "acme")
	if err := pat.SetStatus(ctx, "online"); err != nil {
		t.Fatal(err)
	}
	agent.Wait(`[...document.querySelectorAll("#transfer-to option")].some((o) => o.textContent === "Pat Lee (0/2)")`)
	agent.JS(`document.querySelector("#transfer-to").value = "agent_id:pat";`)
	agent.Screenshot("console-transfer")
	agent.Click("#transfer-form button")
	agent.WaitText("#chat-title", "Select a chat")
	testharness.WaitFor(t, 10*time.Second, "pat to serve the chat", func() bool {
		chats, err := pat.AgentChats(ctx)
		return err == nil && len(chats) == 1 && chats[0].ConversationID == chat.ConversationID
	})
	if _, err := pat.CloseChat(ctx, chat.ConversationID); err != nil {
		t.Fatal(err)
	}

	admin.Click("#refresh-audit")
	admin.WaitText("#audit", "closed")
	admin.WaitText("#audit", "transferred")
	admin.WaitText("#audit", "ann least loaded")
	admin.WaitText("#audit-page", "page 1 of 1 (")
	admin.JS(`const s = document.querySelector("#audit-filter [name=action]"); s.value = "transferred"; s.dispatchEvent(new Event("input", { bubbles: true }));`)
	admin.WaitText("#audit-page", "(1 entries)")
	if got := admin.Text("#audit tbody"); strings.Contains(got, "closed") || !strings.Contains(got, "transferred by ann to pat") {
		t.Fatalf("the audit filtered by action shows %q", got)
	}
	admin.WaitText("#live", "ann")
	admin.WaitText("#agents-table tbody tr:nth-child(1) .now", "online")
	admin.Screenshot("console-admin")
}
