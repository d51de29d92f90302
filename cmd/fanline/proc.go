package main

import (
	"os"
	"strconv"
	"strings"
	"time"
)

// procSample is a reading of a process's CPU time and memory from /proc.
type procSample struct {
	at        time.Time
	cpu       time.Duration
	rss, peak float64 // MiB
}

type serverUsage struct {
	CPUPercent float64 `json:"cpu_percent_of_one_core"`
	RSSMiB     float64 `json:"rss_mib"`
	PeakRSSMiB float64 `json:"peak_rss_mib"`
}

// clockTick is USER_HZ, 100 on Linux.
const clockTick = 100

func sampleProc(pid int) *procSample {
	s := &procSample{at: time.Now()}
	if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil {
		// Fields after the command name (which may hold spaces) start after ") ".
		if i := strings.LastIndexByte(string(b), ')'); i > 0 {
			f := strings.Fields(string(b)[i+2:])
			if len(f) > 12 {
				ut, _ := strconv.ParseInt(f[11], 10, 64)
				st, _ := strconv.ParseInt(f[12], 10, 64)
				s.cpu = time.Duration(ut+st) * time.Second / clockTick
			}
		}
	}
	if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			kb, _ := strconv.ParseFloat(f[1], 64)
			switch f[0] {
			case "VmRSS:":
				s.rss = kb / 1024
			case "VmHWM:":
				s.peak = kb / 1024
			}
		}
	}
	return s
}

func (s *procSample) usage(end *procSample) *serverUsage {
	wall := end.at.Sub(s.at)
	return &serverUsage{
		CPUPercent: 100 * float64(end.cpu-s.cpu) / float64(wall),
		RSSMiB:     end.rss,
		PeakRSSMiB: end.peak,
	}
}
