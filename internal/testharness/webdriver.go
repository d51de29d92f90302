package testharness

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Browser is a headless Chromium driven through chromedriver's WebDriver protocol.
type Browser struct {
	t       testing.TB
	base    string // the session's URL
	http    *http.Client
	session string
}

// chromium finds Debian's chromium and chromedriver.
func chromium() (browser, driver string, ok bool) {
	for _, b := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(b); err == nil {
			browser = p
			break
		}
	}
	driver, err := exec.LookPath("chromedriver")
	return browser, driver, browser != "" && err == nil
}

// StartBrowser starts chromedriver on a free port and opens a headless browser
// session; both end with the test. Without chromium it skips the test, or fails it
// when FANLINE_REQUIRE_SERVICES=1.
func StartBrowser(t testing.TB) *Browser {
	t.Helper()
	browser, driver, ok := chromium()
	if !ok {
		if os.Getenv("FANLINE_REQUIRE_SERVICES") == "1" {
			t.Fatal("testharness: chromium and chromedriver are required (apt-get install chromium chromium-driver)")
		}
		t.Skip("testharness: chromium or chromedriver not installed; skipping the browser test")
	}
	addr := FreeAddr(t)
	port := addr[strings.LastIndex(addr, ":")+1:]
	cmd := exec.Command(driver, "--port="+port)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	b := &Browser{t: t, http: &http.Client{Timeout: 60 * time.Second}}
	root := "http://" + addr
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(root + "/status")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("testharness: chromedriver not up: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var created struct {
		Value struct {
			SessionID string `json:"sessionId"`
		} `json:"value"`
	}
	caps := map[string]any{"capabilities": map[string]any{"alwaysMatch": map[string]any{
		"browserName": "chrome",
		"goog:chromeOptions": map[string]any{"binary": browser,
			"args": []string{"--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900"}},
	}}}
	b.call(http.MethodPost, root+"/session", caps, &created)
	b.session = created.Value.SessionID
	b.base = root + "/session/" + b.session
	t.Cleanup(func() { b.call(http.MethodDelete, b.base, nil, nil) })
	return b
}

// call makes one WebDriver request and decodes the answer into out.
func (b *Browser) call(method, url string, in, out any) {
	b.t.Helper()
	var body io.Reader
	if in != nil {
		data, _ := json.Marshal(in)
		body = bytes.NewReader(data)
	}
	req, _ := http.NewRequest(method, url, body)
	req.Header.Set("Content-Type", "application/json")
	resp, err := b.http.Do(req)
	if err != nil {
		b.t.Fatalf("webdriver %s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		b.t.Fatalf("webdriver %s %s: HTTP %d: %s", method, url, resp.StatusCode, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			b.t.Fatalf("webdriver %s %s: %v", method, url, err)
		}
	}
}

// Screenshot saves the page as name.png in the directory FANLINE_SCREENSHOTS names;
// without it, it does nothing (a person looks at the console this way).
func (b *Browser) Screenshot(name string) {
	b.t.Helper()
	dir := os.Getenv("FANLINE_SCREENSHOTS")
	if dir == "" {
		return
	}
	var out struct {
		Value string `json:"value"`
	}
	b.call(http.MethodGet, b.base+"/screenshot", nil, &out)
	png, err := base64.StdEncoding.DecodeString(out.Value)
	if err != nil {
		b.t.Fatalf("webdriver screenshot: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// Resize sets the browser window's size in CSS pixels (a tablet's, say).
func (b *Browser) Resize(width, height int) {
	b.t.Helper()
	b.call(http.MethodPost, b.base+"/window/rect", map[string]int{"width": width, "height": height}, nil)
}

// Open navigates to url.
func (b *Browser) Open(url string) {
	b.t.Helper()
	b.call(http.MethodPost, b.base+"/url", map[string]string{"url": url}, nil)
}

// JS runs script (a function body; arguments in args) and returns its result.
func (b *Browser) JS(script string, args ...any) any {
	b.t.Helper()
	if args == nil {
		args = []any{}
	}
	var out struct {
		Value any `json:"value"`
	}
	b.call(http.MethodPost, b.base+"/execute/sync", map[string]any{"script": script, "args": args}, &out)
	return out.Value
}

const elementKey = "element-6066-11e4-a52e-4f735466cecf"

func (b *Browser) element(css string) string {
	b.t.Helper()
	var out struct {
		Value map[string]string `json:"value"`
	}
	b.call(http.MethodPost, b.base+"/element", map[string]string{"using": "css selector", "value": css}, &out)
	return out.Value[elementKey]
}

// Type types text into the element css selects.
func (b *Browser) Type(css, text string) {
	b.t.Helper()
	b.call(http.MethodPost, b.base+"/element/"+b.element(css)+"/value", map[string]string{"text": text}, nil)
}

// Click clicks the element css selects.
func (b *Browser) Click(css string) {
	b.t.Helper()
	b.call(http.MethodPost, b.base+"/element/"+b.element(css)+"/click", map[string]any{}, nil)
}

// Text is the visible text of the element css selects ("" when there is none).
func (b *Browser) Text(css string) string {
	b.t.Helper()
	v, _ := b.JS(`const e = document.querySelector(arguments[0]); return e ? e.innerText : "";`, css).(string)
	return v
}

// WaitText waits until the text of the element css selects contains want.
func (b *Browser) WaitText(css, want string) {
	b.t.Helper()
	WaitFor(b.t, 15*time.Second, css+" to show "+strconv.Quote(want), func() bool {
		return strings.Contains(b.Text(css), want)
	})
}

// Wait waits until the JavaScript expression cond is true.
func (b *Browser) Wait(cond string) {
	b.t.Helper()
	WaitFor(b.t, 15*time.Second, cond, func() bool {
		ok, _ := b.JS("return Boolean(" + cond + ");").(bool)
		return ok
	})
}

// Set sets the value of a form field (textarea, input) the way a user's edit would.
func (b *Browser) Set(css, value string) {
	b.t.Helper()
	b.JS(`const e = document.querySelector(arguments[0]); e.value = arguments[1]; e.dispatchEvent(new Event("input"));`, css, value)
}
