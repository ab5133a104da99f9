//go:build !unix

package bench

import "time"

// cpuTime is not available here; CPU shares are reported as 0.
func cpuTime() time.Duration { return 0 }
