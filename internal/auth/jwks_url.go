package auth

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// remoteKeys is a JWKS fetched from a URL and cached. Verify refreshes it lazily: a call
// that finds the set due for refresh fetches it while other calls go on with the cached
// set; a call that meets an unknown kid fetches it (or waits for the fetch under way) at
// most once per minRefetch. A failed fetch keeps the cached set.
type remoteKeys struct {
	url     string
	client  *http.Client
	refresh time.Duration
	log     *slog.Logger
	now     func() time.Time // time.Now; tests replace it before first use

	// mu guards set, due, lastFetch and inflight. It is never held during a fetch.
	mu sync.Mutex
	// set is the last set fetched successfully. INVARIANT: non-nil after newRemoteKeys.
	set *keySet
	// due is when the next periodic refresh is due.
	due time.Time
	// lastFetch is when the last fetch, of any cause, started.
	lastFetch time.Time
	// inflight is non-nil while a fetch runs and is closed when it ends.
	// INVARIANT: at most one fetch runs at a time.
	inflight chan struct{}
}

// newRemoteKeys fetches the set at url once and fails if it cannot.
func newRemoteKeys(url string, client *http.Client, refresh time.Duration, log *slog.Logger) (*remoteKeys, error) {
	r := &remoteKeys{url: url, client: client, refresh: refresh, log: log, now: time.Now}
	now := r.now()
	set, err := r.fetch()
	if err != nil {
		return nil, err
	}
	r.set, r.due, r.lastFetch = set, now.Add(refresh), now
	return r, nil
}

func (r *remoteKeys) key(kid, alg string) (crypto.PublicKey, error) {
	k, err := r.current(false).key(kid, alg)
	if !errors.Is(err, errUnknownKid) {
		return k, err
	}
	return r.current(true).key(kid, alg)
}

// current returns the set to verify with, first fetching it if it is due for refresh or,
// when miss is set (the caller met an unknown kid), if the last fetch started at least
// minRefetch ago. If a fetch is already under way, a caller with miss set waits for it and
// any other caller returns the cached set at once.
func (r *remoteKeys) current(miss bool) *keySet {
	r.mu.Lock()
	if ch := r.inflight; ch != nil {
		if !miss {
			defer r.mu.Unlock()
			return r.set
		}
		r.mu.Unlock()
		<-ch // bounded by fetchTimeout
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.set
	}
	now := r.now()
	fetch := !now.Before(r.due)
	if miss {
		fetch = now.Sub(r.lastFetch) >= minRefetch
	}
	if !fetch {
		defer r.mu.Unlock()
		return r.set
	}
	ch := make(chan struct{})
	r.inflight, r.lastFetch = ch, now
	r.mu.Unlock()

	set, err := r.fetch()

	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.log.Warn("auth: JWKS refresh failed; keeping the previous keys", "err", err)
		r.due = now.Add(min(minRefetch, r.refresh))
	} else {
		r.set, r.due = set, now.Add(r.refresh)
	}
	r.inflight = nil
	close(ch)
	return r.set
}

// fetch gets and parses the set. It must be called without r.mu held.
func (r *remoteKeys) fetch() (*keySet, error) {
	ctx, cancel := context.WithTimeout(context.Background(), fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url, nil)
	if err != nil {
		return nil, fmt.Errorf("auth: JWKS URL: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("auth: fetch JWKS: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("auth: fetch JWKS %s: status %s", r.url, resp.Status)
	}
	set, err := readJWKS(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("auth: JWKS %s: %w", r.url, err)
	}
	return set, nil
}
