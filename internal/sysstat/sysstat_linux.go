package sysstat

func systemMemory() (Memory, error) { return readMeminfo("/proc/meminfo") }

func systemLoad() (float64, error) { return readLoadavg("/proc/loadavg") }
