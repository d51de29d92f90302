package gateway

import (
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/fanline/fanline/internal/wire"
	"github.com/gin-gonic/gin"
	"golang.org/x/time/rate"
)

// What calls cost from a user's rate budget, in units of one text message. Work that
// grows with a request's size is charged by it: a group change by the members it
// names, a mark-read by the receipts it queues (charged after the call, as a debt the
// next calls wait out).
const (
	costSend       = 1
	costRead       = 1
	costList       = 2 // the conversation list, the audit log
	costMarkRead   = 1
	costRecall     = 2
	costConnect    = 5
	costGroup      = 5 // plus one per groupMembersPerUnit members named
	costOpenChat   = 5
	costChatChange = 2
	costAdminWrite = 10
	costPing       = 1

	groupMembersPerUnit = 20 // members of a group change that cost one unit more
	receiptsPerUnit     = 50 // receipts queued by a mark-read that cost one unit more
)

// maxLimitedUsers bounds the buckets kept; past it they are all forgotten (a full
// bucket for everyone is the safe side of forgetting).
const maxLimitedUsers = 1 << 18

// limiter keeps one token bucket per user (their Inbox): every call takes its cost.
// A negative rate turns limiting off.
type limiter struct {
	rate  rate.Limit
	burst int

	mu    sync.Mutex // guards users
	users map[string]*rate.Limiter
}

func newLimiter(perSecond float64, burst int) *limiter {
	if perSecond == 0 {
		perSecond = 100
	}
	if burst <= 0 {
		burst = max(1, int(2*perSecond))
	}
	return &limiter{rate: rate.Limit(perSecond), burst: burst, users: map[string]*rate.Limiter{}}
}

func (l *limiter) bucket(user string) *rate.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.users[user]
	if !ok {
		if len(l.users) >= maxLimitedUsers {
			clear(l.users)
		}
		b = rate.NewLimiter(l.rate, l.burst)
		l.users[user] = b
	}
	return b
}

// take charges cost to user now, or answers how long until it could be paid. A
// cost over the burst takes a full bucket now and the rest as a debt.
func (l *limiter) take(user string, cost int) (ok bool, retryAfter time.Duration) {
	if l.rate < 0 || cost <= 0 {
		return true, 0
	}
	b := l.bucket(user)
	now := time.Now()
	if b.AllowN(now, min(cost, l.burst)) {
		if cost > l.burst {
			b.ReserveN(now, min(cost-l.burst, l.burst))
		}
		return true, 0
	}
	return false, l.wait(b, now, cost)
}

// holds reports whether user's bucket holds cost tokens now, taking none, or how
// long until it would.
func (l *limiter) holds(user string, cost int) (ok bool, retryAfter time.Duration) {
	if l.rate < 0 || cost <= 0 {
		return true, 0
	}
	b := l.bucket(user)
	now := time.Now()
	if b.TokensAt(now) >= float64(min(cost, l.burst)) {
		return true, 0
	}
	return false, l.wait(b, now, cost)
}

// wait is how long bucket b needs to hold cost tokens.
func (l *limiter) wait(b *rate.Limiter, now time.Time, cost int) time.Duration {
	missing := float64(min(cost, l.burst)) - b.TokensAt(now)
	return time.Duration(math.Ceil(missing / float64(l.rate) * float64(time.Second)))
}

// owe charges cost after the fact, as a debt (at most a burst): the work is done, and
// the user's next calls wait until it is paid.
func (l *limiter) owe(user string, cost int) {
	if l.rate < 0 || cost <= 0 {
		return
	}
	l.bucket(user).ReserveN(time.Now(), min(cost, l.burst))
}

// rateLimited is the refusal of a call over budget.
func rateLimited(retryAfter time.Duration) *wire.Error {
	secs := max(1, int(math.Ceil(retryAfter.Seconds())))
	return &wire.Error{Code: wire.CodeRateLimited, Message: "too many requests; retry in " + strconv.Itoa(secs) + " s",
		RetryAfter: secs}
}

// charge takes cost from the caller's budget before the handler runs.
func (g *Gateway) charge(cost int) gin.HandlerFunc {
	return func(c *gin.Context) { g.pay(c, cost) }
}

// affords refuses, before the body is read, a caller whose budget holds less than
// cost now; it takes nothing (the handler pays the whole cost once it is known).
func (g *Gateway) affords(cost int) gin.HandlerFunc {
	return func(c *gin.Context) {
		if ok, wait := g.limits.holds(user(c).Inbox(), cost); !ok {
			g.m.RateLimited.Inc()
			g.fail(c, rateLimited(wait))
		}
	}
}

// pay takes cost from the caller's budget (a sized route's, known once its body is
// read); on refusal it answers and returns false.
func (g *Gateway) pay(c *gin.Context, cost int) bool {
	if e := g.spend(user(c).Inbox(), cost); e != nil {
		g.fail(c, e)
		return false
	}
	return true
}

// spend takes cost from inbox's budget, or counts and returns the refusal.
func (g *Gateway) spend(inbox string, cost int) *wire.Error {
	if ok, wait := g.limits.take(inbox, cost); !ok {
		g.m.RateLimited.Inc()
		return rateLimited(wait)
	}
	return nil
}

// connLimits caps the WebSockets open on this node per user (inbox) and per client
// address. A cap below zero is off.
type connLimits struct {
	perUser, perIP int

	mu    sync.Mutex // guards users and ips
	users map[string]int
	ips   map[string]int
}

func newConnLimits(perUser, perIP int) *connLimits {
	return &connLimits{perUser: perUser, perIP: perIP, users: map[string]int{}, ips: map[string]int{}}
}

// acquire counts a connection of user from ip, or reports which cap it is over.
func (l *connLimits) acquire(user, ip string) *wire.Error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.perUser >= 0 && l.users[user] >= l.perUser {
		return &wire.Error{Code: wire.CodeRateLimited, RetryAfter: 5,
			Message: "too many open connections for this user (" + strconv.Itoa(l.perUser) + "); close one first"}
	}
	if l.perIP >= 0 && l.ips[ip] >= l.perIP {
		return &wire.Error{Code: wire.CodeRateLimited, RetryAfter: 5,
			Message: "too many open connections from this address (" + strconv.Itoa(l.perIP) + ")"}
	}
	l.users[user]++
	l.ips[ip]++
	return nil
}

// release uncounts a connection acquire counted.
func (l *connLimits) release(user, ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.users[user]--; l.users[user] <= 0 {
		delete(l.users, user)
	}
	if l.ips[ip]--; l.ips[ip] <= 0 {
		delete(l.ips, ip)
	}
}

// remoteIP is the client's address as the socket shows it (proxies' headers are not
// trusted: a client could name any address in them).
func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
