package media

import "sync"

// keyLocks is one mutex per object key, made on demand and dropped when unused, so
// a slow step on one object (hashing it, rendering its thumbnail) never delays
// another. It also keeps the set of objects whose bytes are being received, which
// nothing waits for.
type keyLocks struct {
	mu        sync.Mutex
	held      map[string]*keyLock
	receiving map[string]bool
}

type keyLock struct {
	mu   sync.Mutex
	refs int
}

// lock locks key and returns its unlock.
func (l *keyLocks) lock(key string) (unlock func()) {
	l.mu.Lock()
	if l.held == nil {
		l.held = map[string]*keyLock{}
	}
	k := l.held[key]
	if k == nil {
		k = &keyLock{}
		l.held[key] = k
	}
	k.refs++
	l.mu.Unlock()
	k.mu.Lock()
	return func() {
		k.mu.Unlock()
		l.mu.Lock()
		if k.refs--; k.refs == 0 {
			delete(l.held, key)
		}
		l.mu.Unlock()
	}
}

// receive marks key's bytes as being received, unless they are already: a client
// may take as long as it likes to send them, and no one waits for it.
func (l *keyLocks) receive(key string) (done func(), ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.receiving[key] {
		return nil, false
	}
	if l.receiving == nil {
		l.receiving = map[string]bool{}
	}
	l.receiving[key] = true
	return func() {
		l.mu.Lock()
		delete(l.receiving, key)
		l.mu.Unlock()
	}, true
}
