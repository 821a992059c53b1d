package session_test

import "github.com/ratchetkit/ratchetkit/internal/testutil"

// threadCPU is the thread CPU clock the ratio benchmarks time with.
var threadCPU = testutil.ThreadCPU
