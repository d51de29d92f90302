package wire

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// bodyDecoders are the HTTP JSON bodies the gateway decodes with DecodeBody, each with
// the field list its handler passes (gateway/gateway.go, gateway/cs.go). Keep them in
// step with the handlers.
var bodyDecoders = []struct {
	name   string
	fields []string
	new    func() any
}{
	{"POST /v1/messages", SendFields, func() any { return new(SendBody) }},
	{"POST /v1/conversations/{id}/read", []string{"msg_id"}, func() any { return new(ReadRequest) }},
	{"POST /v1/groups", []string{"name", "members"}, func() any { return new(CreateGroupRequest) }},
	{"POST /v1/groups/{id}/members", []string{"add", "remove", "promote", "demote"}, func() any { return new(MembersRequest) }},
	{"POST /v1/shops/{shop_id}/chats", []string{"entry", "product_id", "order_id", "text", "client_msg_id"}, func() any { return new(OpenChatRequest) }},
	{"PUT /v1/agents/me/status", []string{"status"}, func() any { return new(StatusRequest) }},
	{"POST /v1/cs/conversations/{id}/transfer", []string{"agent_id", "skill"}, func() any { return new(TransferRequest) }},
	{"POST /v1/admin/shops/{shop_id}/routing/dry-run", []string{"buyer_id", "entry", "text"}, func() any { return new(DryRunRequest) }},
	{"POST /v1/dev/token", []string{"user_id", "role", "shop_id"}, func() any {
		return new(struct { // gateway.devToken's body
			UserID string `json:"user_id"`
			Role   string `json:"role"`
			ShopID string `json:"shop_id"`
		})
	}},
}

// FuzzDecodeBody decodes a body into the type the selector picks (modulo the number of
// body types), with that handler's field list. No input panics. A rejected body gets
// an *Error whose code is a 400 of this package. An accepted body is one JSON object
// whose keys are all in the list, and the decoded value, marshalled again, sets no
// field outside it either. Seeds live in testdata/fuzz/FuzzDecodeBody.
func FuzzDecodeBody(f *testing.F) {
	for _, d := range bodyDecoders {
		if missing := notInType(d.new(), d.fields); len(missing) > 0 {
			f.Fatalf("%s: the field list names %v, which the body type lacks", d.name, missing)
		}
	}
	f.Add(byte(0), []byte(`{"client_msg_id":"c-1","to":"bob","type":"text","body":{"text":"hi"}}`))
	f.Add(byte(6), []byte(`{"agent_id":"ann"}`))
	f.Fuzz(func(t *testing.T, sel byte, body []byte) {
		d := bodyDecoders[int(sel)%len(bodyDecoders)]
		v := d.new()
		if e := DecodeBody(body, v, d.fields); e != nil {
			if e.Code == "" || e.Message == "" || e.Code.Status() != 400 {
				t.Fatalf("%s: error %#v is not a 400 with a code and a message", d.name, e)
			}
			return
		}
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(body, &raw); err != nil || raw == nil {
			t.Fatalf("%s: accepted %q, which is not one JSON object", d.name, body)
		}
		for k := range raw {
			if !contains(d.fields, k) {
				t.Fatalf("%s: accepted field %q outside %v", d.name, k, d.fields)
			}
		}
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("%s: decoded value does not marshal: %v", d.name, err)
		}
		raw = nil
		if err := json.Unmarshal(b, &raw); err != nil {
			t.Fatal(err)
		}
		for k, val := range raw {
			if !contains(d.fields, k) && !isZeroJSON(val) {
				t.Fatalf("%s: body %q set field %q outside %v: %s", d.name, body, k, d.fields, b)
			}
		}
	})
}

// notInType returns the fields of list that are not JSON fields of the struct v
// points to (embedded structs included).
func notInType(v any, list []string) []string {
	have := map[string]bool{}
	var walk func(reflect.Type)
	walk = func(t reflect.Type) {
		for i := range t.NumField() {
			sf := t.Field(i)
			name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
			if sf.Anonymous && name == "" {
				walk(sf.Type)
				continue
			}
			if name == "" {
				name = sf.Name
			}
			have[name] = true
		}
	}
	walk(reflect.TypeOf(v).Elem())
	var out []string
	for _, f := range list {
		if !have[f] {
			out = append(out, f)
		}
	}
	return out
}

// isZeroJSON reports whether a marshalled field holds its type's zero value, which a
// field without omitempty carries though the body never named it.
func isZeroJSON(v json.RawMessage) bool {
	switch string(v) {
	case `""`, `"0"`, `0`, `false`, `null`, `[]`, `{}`:
		return true
	}
	return false
}
