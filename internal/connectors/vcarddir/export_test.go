package vcarddir

import "time"

// SetLookback shortens the incremental pull's lookback.
func (c *Connector) SetLookback(d time.Duration) { c.lookback = d }

// FilesRead counts the files read so far.
func (c *Connector) FilesRead() int64 { return c.reads.Load() }
