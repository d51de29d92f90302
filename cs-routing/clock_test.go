package csrouting_test

import (
	"sort"
	"sync"
	"time"
)

// manualClock is a Clock that moves only when told; due timers run in time order.
type manualClock struct {
	mu     sync.Mutex // guards now, timers, nextID
	now    time.Time
	timers map[int]*manualTimer
	nextID int
}

type manualTimer struct {
	at time.Time
	id int
	f  func()
}

func newManualClock(t time.Time) *manualClock {
	return &manualClock{now: t, timers: map[int]*manualTimer{}}
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) AfterFunc(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nextID++
	id := c.nextID
	c.timers[id] = &manualTimer{at: c.now.Add(d), id: id, f: f}
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		_, ok := c.timers[id]
		delete(c.timers, id)
		return ok
	}
}

// Advance moves time forward by d, running each timer that falls due at its time.
func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	end := c.now.Add(d)
	c.mu.Unlock()
	for {
		c.mu.Lock()
		var due []*manualTimer
		for _, t := range c.timers {
			if !t.at.After(end) {
				due = append(due, t)
			}
		}
		if len(due) == 0 {
			c.now = end
			c.mu.Unlock()
			return
		}
		sort.Slice(due, func(i, j int) bool {
			return due[i].at.Before(due[j].at) || (due[i].at.Equal(due[j].at) && due[i].id < due[j].id)
		})
		t := due[0]
		delete(c.timers, t.id)
		if t.at.After(c.now) {
			c.now = t.at
		}
		c.mu.Unlock()
		t.f()
	}
}
